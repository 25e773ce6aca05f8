/**
 * The rows of the store's tables and their mapping to the model, shared by every dialect:
 * one schema, one mapping, so SQLite and PostgreSQL cannot drift apart.
 */
import { blacktreeError } from "../errors";
import type { Attempt, AttemptState, Job, JobEvent, NewJob } from "../jobs/model";
import { INITIAL_STATES } from "../jobs/states";
import type { JobState } from "../jobs/states";
import type { AttemptPatch, DeadLetter, Effect, JobPatch, StoreChange } from "./job-store";

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;

/** Stored in attempts.target until the dispatcher routes a job that named no target. */
export const UNCHOSEN_TARGET = "";

// ---- rows and their mapping ----

export interface JobRow {
  id: string;
  type: string;
  state: string;
  deployment_id: string | null;
  priority: number;
  target: string | null;
  concurrency_key: string | null;
  params: string;
  timeouts: string;
  retry: string;
  attempt: number;
  source: string;
  parent_id: string | null;
  created_at: number;
  updated_at: number;
  run_after: number | null;
  deadline: number | null;
  result: string | null;
  error: string | null;
  version: number;
  submitted_by: string | null;
  trace_context?: string | null;
}

export interface AttemptRow {
  job_id: string;
  attempt: number;
  target: string;
  key: string;
  handle: string | null;
  state: string;
  launched_at: number;
  started_at: number | null;
  ended_at: number | null;
  heartbeat_at: number | null;
  exit_code: number | null;
  outcome: string | null;
  reason: string | null;
  result: string | null;
  log: string | null;
  log_lines: number;
}

export const ATTEMPT_COLUMNS: readonly (keyof AttemptRow)[] = [
  "job_id", "attempt", "target", "key", "handle", "state", "launched_at", "started_at",
  "ended_at", "heartbeat_at", "exit_code", "outcome", "reason", "result", "log", "log_lines",
];

export interface EventRow {
  seq: number;
  job_id: string;
  kind: string;
  from_state: string | null;
  to_state: string | null;
  attempt: number | null;
  data: string;
  at: number;
}

export function toJob(r: JobRow): Job {
  return {
    id: r.id,
    type: r.type,
    state: r.state as JobState,
    deploymentId: r.deployment_id,
    priority: r.priority,
    target: r.target,
    concurrencyKey: r.concurrency_key,
    params: JSON.parse(r.params),
    timeouts: JSON.parse(r.timeouts),
    retry: JSON.parse(r.retry),
    attempt: r.attempt,
    source: r.source as Job["source"],
    parentId: r.parent_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    runAfter: r.run_after,
    deadline: r.deadline,
    result: fromJson(r.result),
    error: fromJson(r.error),
    version: r.version,
    submittedBy: r.submitted_by ?? null,
    traceContext: r.trace_context ?? null,
  };
}

export function toAttempt(r: AttemptRow): Attempt {
  return {
    jobId: r.job_id,
    attempt: r.attempt,
    target: r.target,
    key: r.key,
    handle: fromJson(r.handle),
    state: r.state as AttemptState,
    launchedAt: r.launched_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    heartbeatAt: r.heartbeat_at,
    exitCode: r.exit_code,
    outcome: r.outcome as Attempt["outcome"],
    reason: r.reason,
    result: fromJson(r.result),
    log: r.log,
    logLines: Number(r.log_lines ?? 0),
  };
}


export interface EffectRow {
  id: number;
  job_id: string;
  kind: string;
  payload: string;
  created_at: number;
  run_after: number;
  tries: number;
  last_error: string | null;
}

export function toEffect(r: EffectRow): Effect {
  return { id: r.id, jobId: r.job_id, kind: r.kind, payload: JSON.parse(r.payload), createdAt: r.created_at, runAfter: r.run_after, tries: r.tries, lastError: r.last_error };
}

/** Claim order: priority first, then oldest, then as stored (jobs of one commit share a millisecond). */
export function claimOrder(a: JobRow & { stored: number }, b: JobRow & { stored: number }): number {
  return b.priority - a.priority || a.created_at - b.created_at || a.stored - b.stored;
}

/** Records a wake-up written by the commit `change` collects (the earliest one counts). */
export function noteWake(change: StoreChange | null, wake: number | null): void {
  if (!change || wake === null) return;
  if (change.wakeAt === undefined || change.wakeAt === null || wake < change.wakeAt) change.wakeAt = wake;
}

/** What a final event records of its job: status sinks build results from this, never from a later row. */
export function snapshotOf(job: Job) {
  return { state: job.state, attempt: job.attempt, result: job.result, error: job.error };
}

/**
 * The attempt follows its job: one that leaves launching/running ends its attempt's hold
 * on compute (exited) unless the decision keeps it `stopping` until the worker is stopped;
 * one that starts running marks its attempt running.
 */
export function holdAfter(from: JobState, to: JobState, patch: AttemptPatch | undefined, now: number): AttemptPatch | undefined {
  if (patch?.state !== undefined) return patch;
  const wasActive = from === "launching" || from === "running";
  if (to === "running" && wasActive) return { ...patch, state: "running" };
  if (wasActive && to !== "launching" && to !== "running") return { endedAt: now, ...patch, state: "exited" };
  return patch;
}

/** The job a NewJob becomes when inserted at `now` (before the database assigns anything else). */
export function newJobShape(input: NewJob, now: number): Job {
  return {
    id: input.id,
    type: input.type,
    state: input.state,
    deploymentId: input.deploymentId,
    priority: input.priority,
    target: input.target,
    concurrencyKey: input.concurrencyKey,
    params: input.params,
    timeouts: input.timeouts,
    retry: input.retry,
    attempt: 0,
    source: input.source,
    parentId: input.parentId,
    createdAt: now,
    updatedAt: now,
    runAfter: input.runAfter,
    deadline: input.deadline,
    result: null,
    error: input.error,
    version: 1,
    submittedBy: input.submittedBy ?? null,
    traceContext: input.traceContext ?? null,
  };
}

export function checkInitial(input: NewJob): void {
  if (!INITIAL_STATES.includes(input.state)) {
    throw blacktreeError("INVALID_TRANSITION", `A job cannot be created in state '${input.state}'`, { from: null, to: input.state });
  }
}

export function toEvent(r: EventRow): JobEvent {
  return {
    seq: r.seq,
    jobId: r.job_id,
    kind: r.kind,
    from: r.from_state as JobState | null,
    to: r.to_state as JobState | null,
    attempt: r.attempt,
    data: JSON.parse(r.data),
    at: r.at,
  };
}

export interface DeadLetterRow {
  id: string;
  source: string;
  reason: string;
  detail: string;
  body: string;
  properties: string;
  received_at: number;
  replayed_at: number | null;
  replay_count: number;
}

export function toDeadLetter(r: DeadLetterRow): DeadLetter {
  return {
    id: r.id,
    source: r.source,
    reason: r.reason,
    detail: r.detail,
    body: r.body,
    properties: JSON.parse(r.properties),
    receivedAt: r.received_at,
    replayedAt: r.replayed_at,
    replayCount: r.replay_count,
  };
}

// ---- patches: which fields map to which columns ----

export type Encoder = (value: unknown) => unknown;
export const plain: Encoder = (v) => v;

export const JOB_PATCH_COLUMNS: Record<keyof JobPatch, [string, Encoder]> = {
  attempt: ["attempt", plain],
  target: ["target", plain],
  runAfter: ["run_after", plain],
  deadline: ["deadline", plain],
  result: ["result", toJson],
  error: ["error", toJson],
};

export const ATTEMPT_PATCH_COLUMNS: Record<keyof AttemptPatch, [string, Encoder]> = {
  handle: ["handle", toJson],
  state: ["state", plain],
  startedAt: ["started_at", plain],
  endedAt: ["ended_at", plain],
  heartbeatAt: ["heartbeat_at", plain],
  exitCode: ["exit_code", plain],
  outcome: ["outcome", plain],
  reason: ["reason", plain],
  result: ["result", toJson],
  log: ["log", plain],
  logLines: ["log_lines", plain],
  target: ["target", plain],
  key: ["key", plain],
};


// ---- small helpers ----

export function toJson(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

export function fromJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}


/** The columns of a joined row that carry `prefix`, without it. */
export function unprefix<T>(row: Record<string, unknown>, prefix: string): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out as T;
}

export function pageSize(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_PAGE;
  return Math.min(MAX_PAGE, Math.max(1, Math.trunc(limit)));
}

export function encodeCursor(job: Pick<Job, "createdAt" | "id">): string {
  return Buffer.from(`${job.createdAt}:${job.id}`, "utf8").toString("base64url");
}

export function decodeCursor(cursor: string): { createdAt: number; id: string } {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const match = /^(\d{1,16}):(.+)$/s.exec(text);
  // Buffer.from skips characters it cannot decode: a cursor must re-encode to itself.
  if (!match || Buffer.from(text, "utf8").toString("base64url") !== cursor) {
    throw blacktreeError("BAD_REQUEST", "Invalid cursor", { fields: [{ field: "cursor", message: "is not a cursor returned by a previous page" }] });
  }
  return { createdAt: Number(match[1]), id: match[2] };
}


/** Binds a sealed secret to its row: the same ciphertext under another job or name does not open. */
export function secretContext(jobId: string, name: string): string {
  return `job_secrets:${jobId}:${name}`;
}
