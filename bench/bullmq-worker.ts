/**
 * The BullMQ side of section 4, in its own process like the orchestrator: a Worker with a
 * no-op processor. argv: <redis url> <queue> <prefix> <concurrency>. Prints "ready" once
 * it is connected and stops on SIGTERM.
 */
import { Worker } from "bullmq";

async function main() {
  const [url, queue, prefix, concurrency] = process.argv.slice(2);
  const worker = new Worker(queue, async () => undefined, { connection: { url, maxRetriesPerRequest: null }, prefix, concurrency: Number(concurrency) });
  await worker.waitUntilReady();
  process.stdout.write("ready\n");
  process.on("SIGTERM", () => void worker.close().then(() => process.exit(0)));
}

main().catch((err) => {
  process.stderr.write(`❌ bullmq worker: ${(err as Error).message}\n`);
  process.exit(1);
});
