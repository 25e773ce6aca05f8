/**
 * The Graphile Worker side of the PostgreSQL section, in its own process like the
 * orchestrator: `run()` with a no-op task `noop` at the given concurrency and pool size.
 * argv: <connection string> <concurrency> <pool size>. Sends "ready" over IPC once its
 * schema is migrated and it listens, then the payload id of every job that succeeded
 * (batched per event-loop turn); stops on SIGTERM.
 */
import { Logger, run } from "graphile-worker";

async function main() {
  const [connectionString, concurrency, poolSize] = process.argv.slice(2);
  const send = (m: unknown) => process.send!(m);
  let done: string[] = [];
  const runner = await run({
    connectionString,
    concurrency: Number(concurrency),
    maxPoolSize: Number(poolSize),
    noHandleSignals: true,
    // Warnings (e.g. a pool smaller than the concurrency) only: the bench prints no per-job lines.
    logger: new Logger(() => (level, message) => {
      if (level === "error" || level === "warning") process.stderr.write(`⚠️ graphile-worker ${level}: ${message}\n`);
    }),
    taskList: { noop: async () => undefined },
  });
  runner.events.on("job:success", ({ job }) => {
    if (done.length === 0)
      setImmediate(() => {
        send({ done });
        done = [];
      });
    done.push(String((job.payload as { id?: unknown }).id));
  });
  send("ready");
  process.on("SIGTERM", () => void runner.stop().then(() => process.exit(0)));
}

main().catch((err) => {
  process.stderr.write(`❌ graphile worker: ${(err as Error).message}\n`);
  process.exit(1);
});
