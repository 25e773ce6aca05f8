import { runWorker } from "@blacktree/sdk/worker";

/**
 * The acme-report worker: reads its job from the environment, logs through the worker
 * client (stdout and the orchestrator), and returns its result; runWorker reports
 * started, heartbeats and the result, and exits 0 on success.
 */
void runWorker(async (worker) => {
  const title = process.env.ACME_TITLE ?? "Report";
  const lines = Number(process.env.ACME_LINES ?? "1");
  if (worker.env.secrets.includes("webhookToken")) {
    const { webhookToken } = await worker.secrets(); // once per attempt; redacted from the log from now on
    worker.log(`🔄 would notify the webhook with ${webhookToken}`);
  }
  for (let i = 1; i <= lines; i++) worker.log(`📄 ${title}: line ${i} of ${lines} (job ${worker.env.jobId}, attempt ${worker.env.attempt})`);
  return { success: true, message: `wrote ${lines} lines`, lines };
});
