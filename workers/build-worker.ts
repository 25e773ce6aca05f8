/**
 * The reference build worker: clone one branch of a repository, check its Dockerfile,
 * build the image when a Docker engine answers, report through the callback.
 * Exit codes: 0 success, 1 failure, 2 bad build input (never worth a retry).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Callback } from "./build/callback";
import { dockerBuild, dockerEngineAnswers } from "./build/docker";
import { locateBuildInputs } from "./build/dockerfile";
import { cloneRepository } from "./build/git-clone";
import { log, redact } from "./build/log";
import { BuildFailure, EXIT_FAILURE, EXIT_SUCCESS, failureResult, type BuildResult } from "./build/result";
import { stopRunningCommands } from "./build/run-command";
import { readBuildSettings, type BuildSettings } from "./build/settings";
import { runTestCommand, TestFailure } from "./build/test-command";

const NO_ENGINE_MESSAGE = "verified the build context; no Docker engine answered, so no image was built";
const ABORT_GRACE_MS = 3_000;
const EXIT_ON_SIGNAL: Partial<Record<NodeJS.Signals, number>> = { SIGTERM: 143, SIGINT: 130 };

let workDir: string | null = null;
let aborting = false;

function removeWorkDir(): void {
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  workDir = null;
}

async function fetchToken(settings: BuildSettings, callback: Callback | null): Promise<string | undefined> {
  if (!settings.needsToken) return undefined;
  if (!callback) {
    log.warn("a token was asked for but there is no callback URL to fetch it from: cloning without one");
    return undefined;
  }
  const token = (await callback.secrets()).token;
  if (!token) throw new BuildFailure("the secrets response holds no token", EXIT_FAILURE, false);
  return token;
}

async function build(settings: BuildSettings, callback: Callback | null): Promise<BuildResult> {
  const token = await fetchToken(settings, callback);
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-build-"));
  const cloneDir = path.join(workDir, "repo");

  log.progress(`cloning ${settings.repository} (branch ${settings.branch})`);
  await cloneRepository({ repository: settings.repository, branch: settings.branch, dir: cloneDir, token });
  log.success(`cloned ${settings.repository} (branch ${settings.branch})`);

  if (settings.action === "test") return runTestCommand(cloneDir, settings.contextDir, settings.testCommand);

  const inputs = locateBuildInputs(cloneDir, settings.contextDir, settings.dockerfilePath, settings.branch);
  log.success(`found ${path.posix.join(settings.contextDir, settings.dockerfilePath)}`);

  log.progress("looking for a Docker engine");
  if (!(await dockerEngineAnswers())) {
    log.warn("no Docker engine answered: skipping the image build");
    return { success: true, imageUrl: null, error: null, message: NO_ENGINE_MESSAGE };
  }
  log.progress(`building image ${settings.imageTag}`);
  await dockerBuild(inputs, settings.imageTag);
  return { success: true, imageUrl: settings.imageTag, error: null, message: `built image ${settings.imageTag}` };
}

async function main(): Promise<void> {
  const callback = Callback.fromEnv(process.env);
  let result: BuildResult;
  let exitCode: number = EXIT_SUCCESS;
  try {
    const settings = readBuildSettings(process.env);
    log.progress(`${settings.action} job ${settings.jobId || "(no job id)"} attempt ${settings.attempt || "?"}`);
    await callback?.started();
    callback?.startHeartbeats();
    result = await build(settings, callback);
  } catch (err) {
    ({ result, exitCode } = failureResult(err));
    if (err instanceof TestFailure) exitCode = err.testExitCode;
  } finally {
    removeWorkDir();
  }
  if (aborting) return; // the signal handler finishes the run
  // Errors may quote a child's output: the same redaction as the log.
  result = { ...result, error: result.error && redact(result.error), message: redact(result.message) };
  if (result.success) log.success(result.message);
  else log.failure(result.error ?? result.message);
  await callback?.result(result);
  log.result(result);
  process.exit(exitCode);
}

/** Stop what runs, remove the clone, exit 128+signal: no result, the orchestrator asked for this. */
async function abort(signal: NodeJS.Signals): Promise<void> {
  if (aborting) return;
  aborting = true;
  log.warn(`received ${signal}: stopping and cleaning up`);
  await stopRunningCommands(ABORT_GRACE_MS);
  removeWorkDir();
  process.exit(EXIT_ON_SIGNAL[signal] ?? EXIT_FAILURE);
}

for (const signal of Object.keys(EXIT_ON_SIGNAL) as NodeJS.Signals[]) process.on(signal, () => void abort(signal));

main().catch((err: unknown) => {
  log.failure(`unexpected error: ${(err as Error)?.message ?? String(err)}`);
  removeWorkDir();
  process.exit(EXIT_FAILURE);
});
