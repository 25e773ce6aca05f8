/**
 * Test plugin, written as a third party would (only `lib/sdk`): the `controlled` launch
 * target and the `ctl` task type. Tests script the target's timing at run time and read
 * what the engine asked of it from a journal, so they can pin down interleavings
 * (a slow launch, a slow stop, a stale inspect answer) without reading engine internals.
 *
 * Control file `<dataDir>/controlled-control.json`, re-read on every call (missing or
 * unreadable = all zero):
 *   { launchDelayMs, stopDelayMs, logsDelayMs, inspectDelayMs, failFollowUps,
 *     keys: { "<launch key>": { launchDelayMs, stopDelayMs, logsDelayMs, inspectDelayMs, exitNow } } }
 * A per-key value overrides the global one for calls about that key (an inspect batch
 * waits for the longest delay of its keys). `exitNow: <code>` makes that key's worker
 * exit with the code the next time any call reads the control file (if it is running).
 *
 * Journal `<dataDir>/controlled-journal.jsonl`: one JSON line per call and per key,
 *   { op, key, at, ... }  op = launch | launched | stop | stopped | inspect | inspected |
 *                               logs | logged | exit | followups
 * (`followups` is written by the `ctl` task type each time its followUps() is called,
 * keyed by job id, with `failed: true` when it threw.)
 * `launch`/`stop`/`inspect`/`logs` are written when the call begins, `launched`/`stopped`/
 * `inspected`/`logged` when it returns. `launched` carries the worker's callback URL and
 * token (so a test can play the worker and report `started`), `inspected` the status it
 * returned, `stopped` whether a worker existed.
 *
 * Workers live in this target instance's memory, keyed by launch key. `launch` is
 * idempotent on the key (a second launch of a key returns the same worker, but is still
 * journaled); a worker is `running` until stopped (exit 143) or until its `runMs` elapses
 * (then `exited` with its `exitCode`). `inspect` answers from a snapshot taken when the
 * call begins (as a real target's answer is as old as its read), so a delayed inspect
 * delivers a stale answer. Unknown keys are `lost`.
 */
import fs from "node:fs";
import path from "node:path";
import { definePlugin, defineTarget, defineTaskType, TargetHandle, TargetStatus } from "../../../../lib/sdk";

export const CONTROL_FILE = "controlled-control.json";
export const JOURNAL_FILE = "controlled-journal.jsonl";

export interface KeyControl {
  launchDelayMs?: number;
  stopDelayMs?: number;
  logsDelayMs?: number;
  inspectDelayMs?: number;
  /** The worker exits with this code now (applied by the next call that reads the control file). */
  exitNow?: number;
}

export interface Control {
  launchDelayMs?: number;
  stopDelayMs?: number;
  logsDelayMs?: number;
  inspectDelayMs?: number;
  /** `ctl` jobs' followUps() throws while this is true. */
  failFollowUps?: boolean;
  keys?: Record<string, KeyControl>;
}

export interface JournalEntry {
  op: "launch" | "launched" | "stop" | "stopped" | "inspect" | "inspected" | "logs" | "logged" | "exit" | "followups";
  key: string;
  at: number;
  /** Number of the call (one call of a batched inspect journals one line per key, all with its number). */
  call: number;
  [field: string]: unknown;
}

export function readControl(dataDir: string): Control {
  try {
    const value = JSON.parse(fs.readFileSync(path.join(dataDir, CONTROL_FILE), "utf8"));
    return value && typeof value === "object" ? (value as Control) : {};
  } catch {
    return {};
  }
}

function journal(dataDir: string, entry: Omit<JournalEntry, "at" | "call"> & { call?: number }): void {
  try {
    fs.appendFileSync(path.join(dataDir, JOURNAL_FILE), JSON.stringify({ at: Date.now(), call: 0, ...entry }) + "\n");
  } catch {
    // The test's data dir may already be gone after the node stopped.
  }
}

type DelayKind = "launchDelayMs" | "stopDelayMs" | "logsDelayMs" | "inspectDelayMs";

function delayFor(control: Control, kind: DelayKind, keys: string[]): number {
  let ms = Number(control[kind] ?? 0);
  for (const key of keys) {
    const own = control.keys?.[key]?.[kind];
    if (own !== undefined) ms = Math.max(keys.length === 1 ? 0 : ms, Number(own));
  }
  return Math.max(0, ms || 0);
}

interface Worker {
  key: string;
  startedAt: number;
  runMs: number | null;
  exitCode: number;
  ended: { exitCode: number; at: number; stopped: boolean } | null;
}

function statusOf(worker: Worker | undefined, key: string, now: number): TargetStatus {
  if (!worker) return { key, state: "lost", reason: "the controlled target does not know this key" };
  if (!worker.ended && worker.runMs !== null && now >= worker.startedAt + worker.runMs) {
    worker.ended = { exitCode: worker.exitCode, at: worker.startedAt + worker.runMs, stopped: false };
  }
  return worker.ended ? { key, state: "exited", exitCode: worker.ended.exitCode } : { key, state: "running" };
}

const controlledTarget = defineTarget(() => {
  const workers = new Map<string, Worker>();
  /** Delays under way: close() cuts them short, so nothing of a stopped node fires later. */
  const sleeping = new Set<() => void>();
  let calls = 0;
  let closed = false;

  /** A launch delay runs its course even on close (a provisioning call in flight cannot be cut short); the others end early. */
  const sleep = (ms: number, cutOnClose = true) =>
    ms <= 0 || (closed && cutOnClose)
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            sleeping.delete(done);
            resolve();
          };
          const timer = setTimeout(done, ms);
          timer.unref(); // a delay never keeps the test process alive
          if (cutOnClose) sleeping.add(done);
        });

  /** Reads the control file and applies its `exitNow` orders. */
  const control = (dataDir: string, call: number): Control => {
    const c = readControl(dataDir);
    const now = Date.now();
    for (const [key, kc] of Object.entries(c.keys ?? {})) {
      const w = workers.get(key);
      if (kc.exitNow === undefined || !w || statusOf(w, key, now).state !== "running") continue;
      w.ended = { exitCode: Number(kc.exitNow), at: now, stopped: false };
      journal(dataDir, { op: "exit", key, call, exitCode: w.ended.exitCode });
    }
    return c;
  };

  return {
    name: "controlled",
    configSchema: {},
    async launch(req, ctx) {
      const call = ++calls;
      const c = control(ctx.dataDir, call);
      const delayMs = delayFor(c, "launchDelayMs", [req.key]);
      journal(ctx.dataDir, { op: "launch", key: req.key, call, delayMs, jobId: req.jobId, attempt: req.attempt });
      await sleep(delayMs, false);
      let worker = workers.get(req.key);
      if (!worker) {
        const env = req.workload.env ?? {};
        worker = {
          key: req.key,
          startedAt: Date.now(),
          runMs: env.CTL_RUN_MS ? Number(env.CTL_RUN_MS) : null,
          exitCode: env.CTL_EXIT_CODE ? Number(env.CTL_EXIT_CODE) : 0,
          ended: null,
        };
        workers.set(req.key, worker);
      }
      const env = req.workload.env ?? {};
      journal(ctx.dataDir, {
        op: "launched",
        key: req.key,
        call,
        runMs: worker.runMs,
        callbackUrl: env.BLACKTREE_CALLBACK_URL ?? null,
        callbackToken: env.BLACKTREE_CALLBACK_TOKEN ?? null,
      });
      return { key: req.key };
    },
    async inspect(handles: TargetHandle[], ctx) {
      const call = ++calls;
      const c = control(ctx.dataDir, call);
      const keys = handles.map((h) => h.key);
      const delayMs = delayFor(c, "inspectDelayMs", keys);
      const now = Date.now();
      // The answer is read now; a delay makes it as stale as a slow target's.
      const statuses = keys.map((key) => statusOf(workers.get(key), key, now));
      for (const key of keys) journal(ctx.dataDir, { op: "inspect", key, call, delayMs });
      await sleep(delayMs);
      for (const s of statuses) journal(ctx.dataDir, { op: "inspected", key: s.key, call, state: s.state, exitCode: s.state === "exited" ? s.exitCode : null });
      return statuses;
    },
    async stop(handle: TargetHandle, reason: string, ctx) {
      const call = ++calls;
      const c = control(ctx.dataDir, call);
      const delayMs = delayFor(c, "stopDelayMs", [handle.key]);
      journal(ctx.dataDir, { op: "stop", key: handle.key, call, delayMs, reason });
      await sleep(delayMs);
      const worker = workers.get(handle.key);
      const wasRunning = !!worker && statusOf(worker, handle.key, Date.now()).state === "running";
      if (worker && wasRunning) worker.ended = { exitCode: 143, at: Date.now(), stopped: true };
      journal(ctx.dataDir, { op: "stopped", key: handle.key, call, found: !!worker, wasRunning });
    },
    async *logs(handle: TargetHandle, ctx) {
      const call = ++calls;
      const c = control(ctx.dataDir, call);
      const delayMs = delayFor(c, "logsDelayMs", [handle.key]);
      journal(ctx.dataDir, { op: "logs", key: handle.key, call, delayMs });
      await sleep(delayMs);
      journal(ctx.dataDir, { op: "logged", key: handle.key, call });
      yield `controlled worker ${handle.key}`;
    },
    async list() {
      const now = Date.now();
      return [...workers.values()].filter((w) => statusOf(w, w.key, now).state === "running").map((w) => w.key);
    },
    async close() {
      closed = true;
      for (const wake of [...sleeping]) wake();
    },
  };
});

interface CtlParams {
  deploymentId: string;
  runMs?: number;
  exitCode?: number;
  followUp?: boolean;
}

export const ctlTaskType = defineTaskType<CtlParams>({
  name: "ctl",
  params: {
    deploymentId: { type: "string", empty: false, max: 100 },
    runMs: { type: "number", integer: true, min: 0, optional: true },
    exitCode: { type: "number", integer: true, min: 0, max: 255, optional: true, default: 0 },
    followUp: { type: "boolean", optional: true },
  },
  defaults: { target: "controlled" },
  concurrencyKey: (job) => job.params.deploymentId,
  toWorkload(job) {
    return {
      command: ["controlled"],
      env: {
        ...(job.params.runMs !== undefined ? { CTL_RUN_MS: String(job.params.runMs) } : {}),
        CTL_EXIT_CODE: String(job.params.exitCode ?? 0),
      },
    };
  },
  /** One `ctl` follow-up (`<deploymentId>-fu`, job id `<jobId>.fu`) when asked; throws while the control file says `failFollowUps`. */
  followUps(job, _result, ctx) {
    const failing = readControl(ctx.dataDir).failFollowUps === true;
    journal(ctx.dataDir, { op: "followups", key: job.id, failed: failing });
    if (failing) throw new Error(`follow-ups of ${job.id} are failing (controlled-control.json failFollowUps)`);
    if (!job.params.followUp) return [];
    return [{ type: "ctl", jobId: `${job.id}.fu`, deploymentId: `${job.params.deploymentId}-fu`, runMs: 0 }];
  },
});

export default definePlugin({
  name: "test-controlled",
  apiVersion: "^1.0.0",
  taskTypes: [ctlTaskType],
  targets: [controlledTarget],
});
