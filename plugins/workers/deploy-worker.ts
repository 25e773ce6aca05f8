/**
 * The reference deploy/stop worker: runs a deployment's image as a container named
 * `blacktree-<deploymentId>` on the local Docker engine, or removes it (`stop`).
 * Without a Docker engine a deploy fails (not retryable) and a stop has nothing to do.
 */
import { dockerEngineAnswers } from "./build/docker";
import { log, worker } from "./build/log";
import type { BuildResult } from "./build/result";
import { runCommand } from "./build/run-command";

const action = process.env.BLACKTREE_ACTION === "stop" ? "stop" : "deploy";
const deploymentId = process.env.BLACKTREE_DEPLOYMENT_ID ?? "";
const container = `blacktree-${deploymentId.toLowerCase()}`;

async function docker(args: string[]): Promise<{ ok: boolean; detail: string }> {
  const run = await runCommand("docker", args, { env: process.env, echoAs: "docker" });
  return { ok: run.code === 0, detail: run.startError?.message ?? run.lastLines.at(-1) ?? `exit ${run.code ?? run.signal}` };
}

async function deploy(): Promise<BuildResult> {
  const image = process.env.BLACKTREE_IMAGE_URL ?? "";
  if (!(await dockerEngineAnswers())) return { success: false, imageUrl: image, error: "no Docker engine answered: cannot deploy", message: "deploy failed", retryable: false };
  log.progress(`replacing container ${container} with ${image}`);
  await docker(["rm", "-f", container]);
  const port = process.env.BLACKTREE_PORT;
  const args = ["run", "-d", "--name", container, "--label", `blacktree.deployment=${deploymentId}`, ...(port ? ["-p", `${port}:${port}`] : []), "--", image];
  const run = await docker(args);
  return run.ok
    ? { success: true, imageUrl: image, error: null, message: `deployed ${image} as ${container}` }
    : { success: false, imageUrl: image, error: `docker run failed: ${run.detail}`, message: "deploy failed" };
}

async function stop(): Promise<BuildResult> {
  if (!(await dockerEngineAnswers())) return { success: true, error: null, message: "no Docker engine answered: nothing to stop" };
  log.progress(`removing container ${container}`);
  const run = await docker(["rm", "-f", container]);
  return run.ok || /No such container/i.test(run.detail)
    ? { success: true, error: null, message: `stopped ${container}` }
    : { success: false, error: `docker rm failed: ${run.detail}`, message: "stop failed" };
}

async function main() {
  await worker.started(); // and the heartbeats
  log.progress(`${action} of deployment ${deploymentId}`);
  const result = action === "stop" ? await stop() : await deploy();
  if (result.success) log.success(result.message);
  else log.failure(result.error ?? result.message);
  await worker.result(result);
  await worker.close();
  log.result(result);
  process.exit(result.success ? 0 : 1);
}

main().catch((err: unknown) => {
  log.failure(`unexpected error: ${(err as Error)?.message ?? String(err)}`);
  process.exit(1);
});
