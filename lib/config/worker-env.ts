import os from "node:os";
import path from "node:path";
import { blacktreeError } from "../errors";

/** Settings of a pool worker node (`npm run worker`), from its environment. */
export interface WorkerEnvConfig {
  transporter: string;
  namespace: string;
  nodeId: string | null;
  logLevel: string;
  /** The worker's process-target state (launch records, exit files, logs). */
  dataDir: string;
  /** Workloads this node runs at once. */
  capacity: number;
  /** What the node offers (`gpu=true,zone=a`); the pool target matches them against a launch's selector. */
  labels: Record<string, string>;
  /** SIGTERM → SIGKILL grace of a stopped workload. */
  stopGraceMs: number;
}

export function loadWorkerEnv(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): WorkerEnvConfig {
  if (!env.TRANSPORTER) invalid("TRANSPORTER", "is required: a worker node joins the orchestrator's cluster (e.g. nats://127.0.0.1:4222)");
  return {
    transporter: env.TRANSPORTER!,
    namespace: env.NAMESPACE || "blacktree",
    nodeId: env.NODE_ID || null,
    logLevel: env.LOG_LEVEL || "info",
    dataDir: path.resolve(cwd, env.DATA_DIR || "./data-worker"),
    capacity: wholeNumber(env, "WORKER_CAPACITY", os.availableParallelism(), 1, 1000),
    labels: parseLabels(env.WORKER_LABELS ?? "", "WORKER_LABELS"),
    stopGraceMs: wholeNumber(env, "WORKER_STOP_GRACE_MS", 5_000, 0, 600_000),
  };
}

/** `k=v,k2=v2` → `{ k: "v", k2: "v2" }`; empty → `{}`. */
export function parseLabels(text: string, field = "labels"): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf("=");
    const name = eq === -1 ? "" : pair.slice(0, eq).trim();
    if (!/^[A-Za-z0-9_.\-/]{1,63}$/.test(name)) invalid(field, `'${pair}' is not name=value`);
    labels[name] = pair.slice(eq + 1).trim();
  }
  return labels;
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) invalid(name, `must be a whole number from ${min} to ${max}`);
  return n;
}

function invalid(name: string, message: string): never {
  throw blacktreeError("CONFIG_INVALID", `${name} ${message}`, { fields: [{ field: name, message }] });
}
