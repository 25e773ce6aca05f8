import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const FALLBACK_PATH = "/usr/local/bin:/usr/bin:/bin";

/**
 * A worker's whole environment: a few host basics plus the workload's own variables.
 * Never the orchestrator's environment: it holds credentials (database, AWS, AMQP).
 */
export function workerEnv(workloadEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH || FALLBACK_PATH,
    TMPDIR: process.env.TMPDIR || os.tmpdir(),
  };
  if (process.env.HOME) env.HOME = process.env.HOME;
  if (process.env.LANG) env.LANG = process.env.LANG;
  return { ...env, ...workloadEnv };
}

/**
 * Resolves argv[0] the way the wrapper's shell will, so a missing executable fails the
 * launch with a clear error instead of a worker that exits 127 a moment later.
 */
export function findExecutable(file: string, searchPath: string, cwd: string): string | null {
  const candidates = file.includes("/")
    ? [path.resolve(cwd, file)]
    : searchPath
        .split(":")
        .filter(Boolean)
        .map((dir) => path.join(dir, file));
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here: try the next directory
    }
  }
  return null;
}
