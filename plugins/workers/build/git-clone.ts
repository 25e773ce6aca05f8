import path from "node:path";
import { pathToFileURL } from "node:url";
import { registerSecret } from "./log";
import { BuildFailure, EXIT_FAILURE } from "./result";
import { runCommand } from "./run-command";

/**
 * URLs pass through; a local path becomes a file:// URL, because git ignores --depth for
 * plain local paths (it hard-links the whole object store instead).
 */
export function cloneUrl(repository: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repository)) return repository;
  if (/^[^/@:]+@[^/:]+:/.test(repository)) return repository; // scp-like ssh: git@github.com:owner/repo.git
  return pathToFileURL(path.resolve(repository)).href;
}

/**
 * git's environment. The token travels only here, as an http.extraHeader passed through
 * GIT_CONFIG_* variables: never in argv (visible in ps), in the remote URL (written to
 * .git/config on disk) or in the log. It is scoped to the repository's own origin.
 */
export function gitEnv(url: string, token?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: "0" };
  // Traces would print the request headers, the token among them.
  for (const name of Object.keys(env)) if (name.startsWith("GIT_TRACE") || name === "GIT_CURL_VERBOSE") delete env[name];
  env.GIT_SSH_COMMAND ??= "ssh -o BatchMode=yes"; // fail instead of asking for a passphrase
  if (token && /^https?:\/\//i.test(url)) {
    const credentials = Buffer.from(`x-access-token:${token}`).toString("base64");
    registerSecret(token);
    registerSecret(credentials);
    const index = Number(env.GIT_CONFIG_COUNT ?? 0) || 0;
    env[`GIT_CONFIG_KEY_${index}`] = `http.${new URL(url).origin}/.extraHeader`;
    env[`GIT_CONFIG_VALUE_${index}`] = `Authorization: Basic ${credentials}`;
    env.GIT_CONFIG_COUNT = String(index + 1);
  }
  return env;
}

const MISSING_BRANCH = /Remote branch .* not found|Could not find remote branch/i;

export async function cloneRepository(options: { repository: string; branch: string; dir: string; token?: string }): Promise<void> {
  const url = cloneUrl(options.repository);
  // `--branch <value>` always takes the next argument as its value, and `--` ends the
  // options: neither the branch nor the URL can be read as an option.
  const args = ["clone", "--depth", "1", "--branch", options.branch, "--single-branch", "--", url, options.dir];
  const run = await runCommand("git", args, { env: gitEnv(url, options.token), echoAs: "git" });
  if (run.startError) throw new BuildFailure(`git could not be started: ${run.startError.message}`, EXIT_FAILURE, false);
  if (run.code === 0) return;
  const output = run.lastLines.join("\n");
  if (MISSING_BRANCH.test(output)) {
    throw new BuildFailure(`branch "${options.branch}" not found in ${options.repository}`, EXIT_FAILURE, false);
  }
  const reason = [...run.lastLines].reverse().find((line) => line.startsWith("fatal:")) ?? `git exited with ${run.code ?? run.signal}`;
  throw new BuildFailure(`git clone of ${options.repository} (branch ${options.branch}) failed: ${reason}`, EXIT_FAILURE);
}
