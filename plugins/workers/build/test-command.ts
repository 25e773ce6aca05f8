import fs from "node:fs";
import path from "node:path";
import { BuildFailure, EXIT_FAILURE, type BuildResult } from "./result";
import { runCommand } from "./run-command";
import { badInput } from "./result";

/** A test command's exit code becomes the worker's, so the job's history shows it. */
export class TestFailure extends BuildFailure {
  constructor(message: string, readonly testExitCode: number) {
    super(message, EXIT_FAILURE);
  }
}

/**
 * `test` jobs: run the job's test command with `sh -c` in the cloned context directory,
 * with a bare environment (never the worker's callback token). No command: the clone
 * itself is the check.
 */
export async function runTestCommand(cloneDir: string, contextDir: string, command: string): Promise<BuildResult> {
  const cwd = fs.realpathSync(path.resolve(cloneDir, contextDir));
  if (cwd !== fs.realpathSync(cloneDir) && !cwd.startsWith(fs.realpathSync(cloneDir) + path.sep)) throw badInput("contextDir leaves the repository");
  if (!command) return { success: true, error: null, message: "cloned the repository; no test command was given" };
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: process.env.LANG, TMPDIR: process.env.TMPDIR, CI: "true" };
  const run = await runCommand("/bin/sh", ["-c", command], { env, cwd, echoAs: "test" });
  if (run.startError) throw new BuildFailure(`could not start the test command: ${run.startError.message}`, EXIT_FAILURE);
  const code = run.code ?? 128;
  if (code !== 0) throw new TestFailure(`test command exited with code ${code}`, code);
  return { success: true, error: null, message: "tests passed" };
}
