/**
 * The reference deploy/stop worker. A deploy runs the deployment's image through a
 * deployer — a long-running container on a Docker engine, or a new task definition
 * revision of the deployment's ECS service — waits until it answers (or is steady) and only
 * then retires the previous version; a stop removes what the deploys started. Settings
 * come from the env (plugins/workers/deploy/settings.ts), never credentials.
 */
import { createDeployer, DeployFailure, messageOf, readDeployRequest, readDeploySettings, registryAuthFrom, type Deployer } from "./deploy";
import { log, worker } from "./build/log";
import type { BuildResult } from "./build/result";

const action = process.env.BLACKTREE_ACTION === "stop" ? "stop" : "deploy";
const EXIT_ON_SIGNAL: Record<string, number> = { SIGTERM: 143, SIGINT: 130 };

let deployer: Deployer | null = null;
let aborting = false;

/** A deploy reports the image it ran; a stop has none (and says nothing about one). */
function withImage(imageUrl: string | null): Pick<BuildResult, "imageUrl"> {
  return action === "deploy" ? { imageUrl } : {};
}

function failure(err: unknown, imageUrl: string | null): BuildResult {
  const result: BuildResult = { success: false, ...withImage(imageUrl), error: err instanceof DeployFailure ? err.message : `unexpected error: ${messageOf(err)}`, message: `${action} failed` };
  if (err instanceof DeployFailure && err.retryable !== undefined) result.retryable = err.retryable;
  return result;
}

async function run(): Promise<BuildResult> {
  const imageUrl = action === "deploy" ? (process.env.BLACKTREE_IMAGE_URL ?? null) : null;
  try {
    const settings = readDeploySettings(process.env);
    const req = readDeployRequest(process.env);
    deployer = createDeployer(settings, { progress: log.progress, warn: log.warn }, registryAuthFrom(process.env, worker));
    log.progress(`${action} of deployment ${req.deploymentId} on ${settings.kind}${action === "deploy" ? `: ${req.imageUrl}` : ""}`);
    const message = action === "stop" ? await deployer.stop(req.deploymentId) : await deployer.deploy(req);
    return { success: true, ...withImage(imageUrl), error: null, message };
  } catch (err) {
    return failure(err, imageUrl);
  }
}

/** Cut short: undo the deploy under way (the previous version stays), then exit. */
async function abort(reason: string, code: number): Promise<void> {
  if (aborting) return;
  aborting = true;
  log.warn(`${reason}: undoing the ${action} under way`);
  await deployer?.abort().catch((err) => log.warn(`undo failed: ${messageOf(err)}`));
  await worker.close().catch(() => undefined);
  process.exit(code);
}

async function main() {
  await worker.started(); // and the heartbeats
  const result = await run();
  if (aborting) return;
  if (result.success) log.success(result.message);
  else log.failure(result.error ?? result.message);
  await worker.result(result);
  await worker.close();
  log.result(result);
  process.exit(result.success ? 0 : 1);
}

for (const [signal, code] of Object.entries(EXIT_ON_SIGNAL)) process.on(signal, () => void abort(`received ${signal}`, code));
worker.whenStale((err) => void abort(`the orchestrator says this attempt is no longer live (${err.message})`, 1));

main().catch((err: unknown) => {
  log.failure(`unexpected error: ${messageOf(err)}`);
  process.exit(1);
});
