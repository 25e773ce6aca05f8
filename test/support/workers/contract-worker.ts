/**
 * A worker written against the SDK's worker client only (`@blacktree/sdk/worker`), for the
 * worker contract tests. CONTRACT_MODE says what it does:
 * - `report`: started, log lines (pushed only: `echo: false`), its secret once (a second
 *   fetch is refused), then a result naming what it saw;
 * - `fail`: a result `{ success: false, retryable: false }`, then exit CONTRACT_EXIT;
 * - `linger`: started, a log line, then it ignores SIGTERM and beats until the orchestrator
 *   says the attempt is no longer live, prints what it was told and exits 3.
 */
import { CallbackError, WorkerClient } from "@blacktree/sdk/worker";

async function main(): Promise<void> {
  const mode = process.env.CONTRACT_MODE;
  const worker = WorkerClient.fromEnv({ echo: false, logFlushMs: 20, retryDelayMs: 50 });
  if (mode === "report") {
    const started = await worker.started();
    worker.log("pushed line 1");
    worker.log("pushed line 2");
    const { apiToken } = await worker.secrets();
    worker.log(`the token is ${apiToken}`);
    let secondFetch = "allowed";
    await worker.secrets().catch((err: CallbackError) => (secondFetch = `${err.status} ${err.type}`));
    const envNames = Object.keys(process.env).filter((k) => k.startsWith("BLACKTREE_")).sort().join(",");
    const recorded = await worker.result({ success: true, message: "reported", started, envNames, secondFetch, attempt: worker.env.attempt, jobType: worker.env.jobType, deploymentId: worker.env.deploymentId, echo: apiToken });
    await worker.close();
    process.exit(recorded ? 0 : 4);
  }
  if (mode === "fail") {
    await worker.started();
    await worker.result({ success: false, error: "the input cannot work", retryable: false });
    await worker.close();
    process.exit(Number(process.env.CONTRACT_EXIT ?? "1"));
  }
  if (mode === "linger") {
    process.on("SIGTERM", () => process.stdout.write("got SIGTERM: carrying on\n"));
    await worker.started();
    worker.log("lingering");
    await worker.flush();
    while (!worker.stale) {
      await worker.heartbeat();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    process.stdout.write(`stale: ${worker.stale.status} ${worker.stale.type}\n`);
    process.exit(3);
  }
  process.stderr.write(`unknown CONTRACT_MODE ${mode}\n`);
  process.exit(2);
}

void main();
