import { createHash } from "node:crypto";
import type { JobState } from "./states";
import type { FailureReason, RetryPolicy, Timeouts } from "./policy";

export type JobSource = "rest" | "amqp" | "internal";

/** What a job ended with, as the worker and the target reported it. */
export interface JobResult {
  imageUrl?: string | null;
  [key: string]: unknown;
}

export interface JobError {
  type: string;
  message: string;
  fields?: { field: string; message: string }[];
}

export interface Job {
  id: string;
  type: string;
  state: JobState;
  deploymentId: string | null;
  priority: number;
  target: string | null;
  /** Jobs sharing a key never run at the same time (e.g. one per deployment). */
  concurrencyKey: string | null;
  /** The normalized, validated task parameters, without secrets. */
  params: Record<string, unknown>;
  timeouts: Timeouts;
  retry: RetryPolicy;
  /** Number of the latest attempt (0 before the first launch). */
  attempt: number;
  source: JobSource;
  parentId: string | null;
  createdAt: number;
  updatedAt: number;
  /** When a queued or retrying job may next run (backoff), epoch ms. */
  runAfter: number | null;
  /** End of `totalTimeout`, epoch ms. */
  deadline: number | null;
  result: JobResult | null;
  error: JobError | null;
  version: number;
  /** Name of the API key that submitted the job over REST (null for AMQP and internal jobs). */
  submittedBy: string | null;
  /** The W3C traceparent of the job's trace (null when tracing is off): see lib/tracing.ts. */
  traceContext: string | null;
}

/**
 * `stopping`: the job moved on (cancelled, timed out) but the worker may still run; the
 * attempt keeps its share of the limits until its target confirms the stop.
 */
export type AttemptState = "launching" | "running" | "stopping" | "exited" | "lost" | "stopped";

/** Attempt states that hold compute and count against the concurrency limits. */
export const HOLDING_ATTEMPT_STATES: readonly AttemptState[] = ["launching", "running", "stopping"];

export interface Attempt {
  jobId: string;
  attempt: number;
  target: string;
  /** `<jobId>:<attempt>`: targets are idempotent on it. */
  key: string;
  handle: unknown | null;
  state: AttemptState;
  launchedAt: number;
  startedAt: number | null;
  endedAt: number | null;
  /** Last sign of life from the worker (callback), epoch ms. */
  heartbeatAt: number | null;
  exitCode: number | null;
  outcome: FailureReason | "SUCCEEDED" | "CANCELLED" | null;
  reason: string | null;
  result: JobResult | null;
  log: string | null;
  /** Lines the worker posted so far; `log` keeps the last of them (each line's number within the attempt is known from this). */
  logLines: number;
}

/** One row of the outbox: the job's history and the feed of every status sink. */
export interface JobEvent {
  seq: number;
  jobId: string;
  kind: string;
  from: JobState | null;
  to: JobState | null;
  attempt: number | null;
  data: Record<string, unknown>;
  at: number;
}

export interface NewJob {
  id: string;
  type: string;
  state: "queued" | "rejected";
  deploymentId: string | null;
  priority: number;
  target: string | null;
  concurrencyKey: string | null;
  params: Record<string, unknown>;
  /** Secret values (the GitHub token); stored apart from params, never returned. */
  secrets: Record<string, string>;
  timeouts: Timeouts;
  retry: RetryPolicy;
  source: JobSource;
  parentId: string | null;
  error: JobError | null;
  deadline: number | null;
  runAfter: number | null;
  /** Name of the submitting API key (REST). */
  submittedBy?: string | null;
  /** The trace the job belongs to (lib/tracing.ts), stored with it. */
  traceContext?: string | null;
  /** Written with the job: what accepting it causes (a `stop`'s cancellations). */
  effects?: Array<{ kind: string; payload: Record<string, unknown> }>;
}

export function attemptKey(jobId: string, attempt: number): string {
  return `${jobId}:${attempt}`;
}

/**
 * A job's identity: the explicit idempotency key when given, else a hash of
 * (type, deploymentId, createdAt), so a redelivered message maps to the same job.
 */
export function deriveJobId(parts: { idempotencyKey?: string | null; type: string; deploymentId?: string | null; createdAt?: string | null }): string {
  if (parts.idempotencyKey) return parts.idempotencyKey;
  const h = createHash("sha256").update(JSON.stringify([parts.type, parts.deploymentId ?? null, parts.createdAt ?? null])).digest("hex");
  return `job_${h.slice(0, 24)}`;
}

/**
 * The id of a REST job whose caller gave a key (`jobId`, `idempotencyKey` or the
 * `Idempotency-Key` header): the key in the caller's own namespace, `rest:<key name>:<key>`,
 * hashed. It can never be an AMQP message id or the hash of a backend message, and two
 * callers' keys never name one job.
 */
export function restJobId(keyName: string, key: string): string {
  return `job_${createHash("sha256").update(`rest:${keyName}:${key}`).digest("hex").slice(0, 24)}`;
}

/** The public view of a job: timestamps as ISO strings. Secrets are never part of a Job. */
export function jobView(job: Job) {
  return {
    ...job,
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    runAfter: iso(job.runAfter),
    deadline: iso(job.deadline),
  };
}

export function attemptView(a: Attempt) {
  const { log: _log, ...rest } = a;
  return { ...rest, launchedAt: iso(a.launchedAt), startedAt: iso(a.startedAt), endedAt: iso(a.endedAt), heartbeatAt: iso(a.heartbeatAt) };
}

export function eventView(e: JobEvent) {
  return { ...e, at: iso(e.at) };
}

export function iso(ms: number | null): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
