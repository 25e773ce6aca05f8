import { ServiceBroker } from "moleculer";
import { brokerConfig } from "../moleculer.config";
import { loadWorkerEnv } from "../lib/config/worker-env";
import { describeError } from "../lib/errors";
import { workerService } from "../services/worker.service";

/** `npm run worker`: a long-lived pool worker node (TRANSPORTER, NAMESPACE, WORKER_CAPACITY, WORKER_LABELS, DATA_DIR, NODE_ID). */
async function main() {
  const settings = loadWorkerEnv();
  const broker = new ServiceBroker(brokerConfig(settings));
  broker.createService(workerService(settings));
  await broker.start();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    broker.logger.info(`🔄 ${signal}: leaving the cluster (running workloads are left to finish)`);
    await broker.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((err) => {
  const e = describeError(err);
  process.stderr.write(`❌ worker node failed to start: ${e.type}: ${e.message}\n`);
  process.exit(1);
});
