import { ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, TEST_API_KEYS_ENV } from "./orchestrator";

const TSX = pathToFileURL(require.resolve("tsx")).href;

/** The real entry point (`bin/<name>.ts`) as a separate process with only the given environment (plus PATH, HOME, the test API keys and no rate limit). */
export function startEntryPoint(env: Record<string, string>, entry = "blacktree"): ChildProcess {
  const child = spawn(process.execPath, ["--import", TSX, path.join(ROOT, `bin/${entry}.ts`)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, BLACKTREE_API_KEYS: TEST_API_KEYS_ENV, BLACKTREE_RATE_LIMIT: "100000000", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (process.env.TEST_LOG_LEVEL) {
    child.stdout!.pipe(process.stdout);
    child.stderr!.pipe(process.stderr);
  } else {
    child.stdout!.resume();
    child.stderr!.resume();
  }
  return child;
}

/** SIGKILL, and wait until the process is really gone. */
export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}
