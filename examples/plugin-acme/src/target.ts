import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import { createInterface } from "node:readline";
import { blacktreeError, defineTarget, type LaunchTarget, type PluginContext, type TargetHandle, type TargetStatus } from "@blacktree/sdk";

export interface AcmeConfig {
  stopGraceMs: number;
  logLines: number;
}

interface Worker {
  child: ChildProcess;
  /** Resolves once the process is running; rejects when it could not start. */
  started: Promise<void>;
  ended: Promise<void>;
  exitCode: number | null;
  lines: string[];
}

/**
 * `acme`: runs each workload as a child process of the orchestrator, in its own process
 * group, and keeps what it knows in memory. Idempotent on the launch key; pushes each exit
 * at once. `close` kills its workers; after a crash they are unknown (`lost`, retried) and
 * not reaped — a target that must survive restarts keeps records (the built-in `process`).
 */
export const acmeTarget = defineTarget<AcmeConfig>(() => {
  const workers = new Map<string, Worker>();
  let config: AcmeConfig = { stopGraceMs: 2_000, logLines: 1_000 };

  const status = (key: string): TargetStatus => {
    const w = workers.get(key);
    if (!w) return { key, state: "lost", reason: "unknown to this acme target (launched before a restart?)" };
    return w.exitCode === null ? { key, state: "running" } : { key, state: "exited", exitCode: w.exitCode };
  };
  const kill = (w: Worker, signal: NodeJS.Signals) => {
    try {
      process.kill(-w.child.pid!, signal); // the whole process group
    } catch {} // already gone
  };

  const target: LaunchTarget<AcmeConfig> = {
    name: "acme",
    configSchema: {
      stopGraceMs: { type: "number", integer: true, min: 0, default: 2_000 },
      logLines: { type: "number", integer: true, min: 1, default: 1_000 },
    },
    async init(c) {
      config = c;
    },
    async launch(req, ctx: PluginContext): Promise<TargetHandle> {
      const known = workers.get(req.key);
      if (known) return known.started.then(() => ({ key: req.key })); // the same worker, however often asked
      const [file, ...args] = req.workload.command ?? [];
      if (!file) throw blacktreeError("LAUNCH_FAILED", "acme runs commands: the workload has none", undefined, { retryable: false });
      const child = spawn(file, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...req.workload.env } });
      const w: Worker = { child, started: new Promise((ok, fail) => child.once("spawn", ok).once("error", fail)), ended: Promise.resolve(), exitCode: null, lines: [] };
      workers.set(req.key, w);
      for (const stream of [child.stdout!, child.stderr!]) {
        createInterface({ input: stream }).on("line", (line) => w.lines.push(line) > config.logLines && w.lines.shift());
      }
      w.ended = new Promise((done) =>
        child.once("close", (code, signal) => {
          w.exitCode = code ?? 128 + (signal ? constants.signals[signal] : 0);
          if (workers.get(req.key) === w) ctx.pushStatus?.(status(req.key)); // the engine decides now, not at its next inspect
          done();
        }),
      );
      try {
        await w.started;
      } catch (err) {
        workers.delete(req.key);
        throw blacktreeError("LAUNCH_FAILED", `acme cannot start ${file}: ${(err as Error).message}`, undefined, { retryable: false });
      }
      return { key: req.key };
    },
    async inspect(handles) {
      return handles.map((h) => status(h.key)); // one answer per handle, in one call
    },
    async stop(handle) {
      const w = workers.get(handle.key);
      if (!w || w.exitCode !== null) return; // finished or unknown: nothing to do
      kill(w, "SIGTERM");
      const timer = new Promise((resolve) => setTimeout(resolve, config.stopGraceMs));
      if ((await Promise.race([w.ended.then(() => "ended"), timer])) !== "ended") kill(w, "SIGKILL");
      await w.ended;
    },
    async *logs(handle) {
      yield* workers.get(handle.key)?.lines ?? [];
    },
    async list() {
      return [...workers].filter(([, w]) => w.exitCode === null).map(([key]) => key);
    },
    async close() {
      for (const w of workers.values()) if (w.exitCode === null) kill(w, "SIGKILL");
    },
  };
  return target;
});
