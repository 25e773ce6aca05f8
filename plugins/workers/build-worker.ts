/**
 * The reference build worker: clone one branch of a repository, check its Dockerfile,
 * build the image when a Docker engine answers, report through the worker contract
 * (`@blacktree/sdk/worker`). Exit codes: 0 success, 1 failure, 2 bad build input (never
 * worth a retry).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildahAvailable, buildahBuild, buildahPush, buildahRemove, checkUserNamespaces, writeAuthFile } from "./build/buildah";
import { dockerBuild, dockerEngineAnswers } from "./build/docker";
import { locateBuildInputs } from "./build/dockerfile";
import { cloneRepository } from "./build/git-clone";
import { log, redact, worker } from "./build/log";
import { BuildFailure, EXIT_FAILURE, EXIT_SUCCESS, failureResult, type BuildResult } from "./build/result";
import { stopRunningCommands } from "./build/run-command";
import { readBuildSettings, type BuildSettings } from "./build/settings";
import { runTestCommand, TestFailure } from "./build/test-command";

const NO_ENGINE_MESSAGE = "verified the build context; no Docker engine answered, so no image was built";
const ABORT_GRACE_MS = 3_000;
const EXIT_ON_SIGNAL: Record<string, number> = { SIGTERM: 143, SIGINT: 130 };

let workDir: string | null = null;
let aborting = false;

function removeWorkDir(): void {
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  workDir = null;
}

/** The one secrets fetch of this attempt: the clone token and the registry credentials come together. */
async function fetchSecrets(settings: BuildSettings): Promise<Record<string, string>> {
  if (settings.secretNames.length === 0) return {};
  if (!worker.connected) {
    log.warn("secrets were named but there is no callback URL to fetch them from: going on without them");
    return {};
  }
  try {
    return await worker.secrets();
  } catch (err) {
    throw new BuildFailure(`could not fetch the build's secrets: ${(err as Error).message}`, EXIT_FAILURE);
  }
}

async function build(settings: BuildSettings): Promise<BuildResult> {
  const secrets = await fetchSecrets(settings);
  if (settings.needsToken && !secrets.token) throw new BuildFailure("the secrets response holds no token", EXIT_FAILURE, false);
  if (settings.registry) {
    settings.registry.username = secrets.registryUsername;
    settings.registry.password = secrets.registryPassword;
  }
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-build-"));
  const cloneDir = path.join(workDir, "repo");

  log.progress(`cloning ${settings.repository} (branch ${settings.branch})`);
  await cloneRepository({ repository: settings.repository, branch: settings.branch, dir: cloneDir, token: secrets.token });
  log.success(`cloned ${settings.repository} (branch ${settings.branch})`);

  if (settings.action === "test") return runTestCommand(cloneDir, settings.contextDir, settings.testCommand);

  const inputs = locateBuildInputs(cloneDir, settings.contextDir, settings.dockerfilePath, settings.branch);
  log.success(`found ${path.posix.join(settings.contextDir, settings.dockerfilePath)}`);

  if (settings.builder === "buildah") {
    if (!(await buildahAvailable())) throw new BuildFailure("BLACKTREE_BUILDER is buildah, but buildah cannot be run here", EXIT_FAILURE, false);
    return buildWithBuildah(settings, inputs);
  }
  log.progress("looking for a Docker engine");
  if (!(await dockerEngineAnswers())) {
    if (settings.builder === "docker") throw new BuildFailure("BLACKTREE_BUILDER is docker, but no Docker engine answered", EXIT_FAILURE);
    log.warn("no Docker engine answered: skipping the image build");
    return { success: true, imageUrl: null, error: null, message: NO_ENGINE_MESSAGE };
  }
  log.progress(`building image ${settings.imageTag} with the Docker engine`);
  await dockerBuild(inputs, settings.imageTag);
  return { success: true, imageUrl: settings.imageTag, error: null, message: `built image ${settings.imageTag}` };
}

/**
 * Builds with buildah and pushes to the target's registry. The result's imageUrl is
 * `registry/repository:tag@sha256:<digest>` with the digest buildah's push reported. The
 * tag is per attempt (see the build task type), so a retry never moves an earlier attempt's tag.
 */
async function buildWithBuildah(settings: BuildSettings, inputs: ReturnType<typeof locateBuildInputs>): Promise<BuildResult> {
  const registry = settings.registry;
  const insecure = registry?.insecure ?? false;
  const authFile = registry ? writeAuthFile(workDir!, registry) : null;
  const destination = registry ? `${registry.url}/${registry.repositoryPrefix}${settings.imageTag}` : null;
  const localTag = destination ?? `localhost/${settings.imageTag}`;
  await checkUserNamespaces();
  log.progress(`building image ${localTag} with buildah (chroot isolation, vfs storage)`);
  await buildahBuild(inputs, localTag, { insecure, authFile });
  log.success(`built image ${localTag}`);
  if (!destination) {
    log.warn("the target names no registry: the image stays in this worker's local storage");
    return { success: true, imageUrl: localTag, error: null, message: `built image ${localTag} (not pushed: no registry configured)` };
  }
  log.progress(`pushing ${destination}`);
  const digest = await buildahPush(localTag, destination, { insecure, authFile, workDir: workDir! });
  await buildahRemove(localTag);
  const imageUrl = `${destination}@${digest}`;
  return { success: true, imageUrl, error: null, message: `built and pushed ${imageUrl}` };
}

async function main(): Promise<void> {
  let result: BuildResult;
  let exitCode: number = EXIT_SUCCESS;
  try {
    const settings = readBuildSettings(process.env);
    log.progress(`${settings.action} job ${settings.jobId || "(no job id)"} attempt ${settings.attempt || "?"}`);
    await worker.started(); // and the heartbeats
    result = await build(settings);
  } catch (err) {
    ({ result, exitCode } = failureResult(err, process.env.BLACKTREE_ACTION === "test" ? "test" : "build"));
    if (err instanceof TestFailure) exitCode = err.testExitCode;
  } finally {
    removeWorkDir();
  }
  if (aborting) return; // the signal handler finishes the run
  // Errors may quote a child's output: the same redaction as the log.
  result = { ...result, error: result.error && redact(result.error), message: redact(result.message) };
  if (result.success) log.success(result.message);
  else log.failure(result.error ?? result.message);
  await worker.result(result);
  await worker.close();
  log.result(result);
  process.exit(exitCode);
}

/** Stop what runs, remove the clone, exit (128+signal): no result, the orchestrator asked for this. */
async function abort(why: string, exitCode: number): Promise<void> {
  if (aborting) return;
  aborting = true;
  log.warn(`${why}: stopping and cleaning up`);
  await stopRunningCommands(ABORT_GRACE_MS);
  removeWorkDir();
  process.exit(exitCode);
}

for (const [signal, code] of Object.entries(EXIT_ON_SIGNAL)) process.on(signal, () => void abort(`received ${signal}`, code));
// The orchestrator says this attempt is over (cancelled, timed out, replaced): stop, as on SIGTERM.
worker.whenStale((err) => void abort(`the orchestrator says this attempt is no longer live (${err.message})`, EXIT_FAILURE));

main().catch((err: unknown) => {
  log.failure(`unexpected error: ${(err as Error)?.message ?? String(err)}`);
  removeWorkDir();
  process.exit(EXIT_FAILURE);
});
