import { BuildFailure, EXIT_FAILURE } from "./result";
import { runCommand } from "./run-command";
import type { BuildInputs } from "./dockerfile";

const ENGINE_PROBE_TIMEOUT_MS = 5_000;

/** Whether a Docker engine answers; no `docker` CLI at all counts as no engine. */
export async function dockerEngineAnswers(): Promise<boolean> {
  const probe = await runCommand("docker", ["info", "--format", "{{.ServerVersion}}"], {
    env: process.env,
    timeoutMs: ENGINE_PROBE_TIMEOUT_MS,
  });
  return !probe.startError && !probe.timedOut && probe.code === 0;
}

export async function dockerBuild(inputs: BuildInputs, imageTag: string): Promise<void> {
  // Only absolute paths and the value of -t follow: nothing the CLI could take for an option.
  const args = ["build", "-f", inputs.dockerfile, "-t", imageTag, inputs.contextDir];
  const run = await runCommand("docker", args, { env: process.env, echoAs: "docker" });
  if (run.code === 0) return;
  const reason = run.startError?.message ?? run.lastLines.at(-1) ?? `docker exited with ${run.code ?? run.signal}`;
  throw new BuildFailure(`docker build of ${imageTag} failed: ${reason}`, EXIT_FAILURE);
}
