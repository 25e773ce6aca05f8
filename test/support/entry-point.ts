import { ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { authHeader, freePort, ROOT, tempDir, TEST_API_KEYS_ENV } from "./orchestrator";
import { waitFor } from "./wait";

const TSX = pathToFileURL(require.resolve("tsx")).href;

/** The real entry point (`bin/<name>.ts`) as a separate process with only the given environment (plus PATH, HOME, the test API keys and no rate limit). */
export function startEntryPoint(env: Record<string, string>, entry = "blacktree"): ChildProcess {
  const child = spawn(process.execPath, ["--import", TSX, path.join(ROOT, `bin/${entry}.ts`)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...runTmp(), BLACKTREE_API_KEYS: TEST_API_KEYS_ENV, BLACKTREE_RATE_LIMIT: "100000000", BLACKTREE_AUTH_FAILURE_LIMIT: "100000000", ...env },
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

/** The run's temporary directory (test/support/global-setup.ts), so a child's temporary files are removed with it. */
export function runTmp(): { TMPDIR?: string } {
  return process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {};
}

/** SIGKILL, and wait until the process is really gone. */
export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/** A data directory, a plugins config and a port for the real entry point, with REST helpers that carry the test key. */
export interface EntryPointSetup {
  dataDir: string;
  url: string;
  env: Record<string, string>;
  get(route: string): Promise<any>;
  /** Submits a job and returns its id (expects 202). */
  submit(body: object): Promise<string>;
  /** Waits until /health answers. */
  healthy(message?: string): Promise<void>;
}

export async function prepareEntryPoint(opts: { configure?: (config: any) => void; env?: Record<string, string> } = {}): Promise<EntryPointSetup> {
  const dataDir = tempDir();
  const config = JSON.parse(fs.readFileSync(path.join(ROOT, "plugins.config.json"), "utf8"));
  opts.configure?.(config);
  const configFile = path.join(dataDir, "plugins.config.json");
  fs.writeFileSync(configFile, JSON.stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { DATA_DIR: path.join(dataDir, "data"), PORT: String(port), HOST: "127.0.0.1", PLUGINS_CONFIG: configFile, LOG_LEVEL: "warn", RECONCILE_INTERVAL_MS: "100", DISPATCH_INTERVAL_MS: "100", ...opts.env };
  const get = async (route: string) => (await fetch(url + route, { headers: authHeader() })).json() as Promise<any>;
  return {
    dataDir,
    url,
    env,
    get,
    async submit(body) {
      const res = await fetch(`${url}/api/jobs`, { method: "POST", headers: authHeader(), body: JSON.stringify(body) });
      if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as any).job.id as string;
    },
    async healthy(message = "orchestrator did not start") {
      await waitFor(() => fetch(`${url}/health`).then((r) => r.ok, () => false), { timeout: 30_000, message });
    },
  };
}

/**
 * Runs the entry point until it exits by itself (start-up errors): its exit code and
 * output. A process still running after `timeoutMs` is killed and reported as `code: null`.
 */
export async function runUntilExit(env: Record<string, string>, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", TSX, path.join(ROOT, "bin/blacktree.ts")], {
    cwd: ROOT,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...runTmp(), BLACKTREE_API_KEYS: TEST_API_KEYS_ENV, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
  const outcome = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (outcome === "timeout") {
    await killHard(child);
    return { code: null, stdout, stderr };
  }
  return { code: outcome, stdout, stderr };
}
