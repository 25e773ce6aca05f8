import { ServiceBroker } from "moleculer";
import { brokerConfig } from "../moleculer.config";
import { describeError } from "../lib/errors";
import { createRuntime } from "../lib/runtime";
import { nodeServices } from "../services";

/**
 * `blacktree serve` (and `blacktree` with no command, which `npm start` and the image run):
 * loads config and plugins first (a bad plugin stops start-up with its code), then starts the broker.
 */
export async function serve(): Promise<void> {
  try {
    await start();
  } catch (err) {
    const e = describeError(err);
    const fields = (err as { data?: { fields?: Array<{ field: string; message: string }> } }).data?.fields;
    process.stderr.write(`❌ Blacktree Orchestrator failed to start: ${e.type}: ${e.message}\n`);
    for (const f of fields ?? []) process.stderr.write(`   - ${f.field}: ${f.message}\n`);
    process.exit(1);
  }
}

async function start() {
  const rt = await createRuntime();
  const broker = new ServiceBroker(brokerConfig(rt.env));
  for (const schema of nodeServices(rt)) broker.createService(schema);
  try {
    await broker.start();
  } catch (err) {
    // A service that cannot start (the gateway's port taken, RabbitMQ unreachable): whatever did start stops too.
    await broker.stop().catch(() => undefined);
    await rt.store.close().catch(() => undefined);
    await rt.tracing.shutdown().catch(() => undefined);
    throw err;
  }
  const services = rt.env.services?.join(", ") ?? "all services";
  broker.logger.info(`✅ Blacktree Orchestrator (${rt.env.mode}) running ${services} with the ${rt.store.dialect} store; gateway on http://127.0.0.1:${rt.env.port}`);
  if (rt.generatedAdminKeyFile) {
    // The key itself is never logged: the line says where it is and how to use it.
    broker.logger.info(`✅ generated an admin API key into ${rt.generatedAdminKeyFile} (mode 0600). Try: KEY=$(cat ${rt.generatedAdminKeyFile}); curl -H "Authorization: Bearer $KEY" http://127.0.0.1:${rt.env.port}/api/jobs`);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    broker.logger.info(`🔄 ${signal}: stopping (running workers are left to finish and are adopted on the next start)`);
    await broker.stop();
    await rt.store.close();
    // The spans finished last (the final publishes) leave before the process does.
    await rt.tracing.shutdown().catch((err) => broker.logger.warn(`⚠️ could not export the last spans: ${describeError(err).message}`));
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}
