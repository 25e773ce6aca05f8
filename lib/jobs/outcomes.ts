import type { TargetStatus } from "../plugins/sdk";
import type { AttemptPatch, EffectInput, TransitionRequest } from "../store/job-store";
import type { Attempt, Job, JobResult } from "./model";
import { backoffDelay, FailureReason, shouldRetry } from "./policy";
import type { JobState } from "./states";

export interface AttemptEnd {
  outcome: FailureReason | "SUCCEEDED";
  exitCode?: number | null;
  reason: string;
  /** False when the worker or target said retrying cannot help. */
  retryable?: boolean;
  /** Which timeout fired, for TIMED_OUT and a heartbeat's WORKER_LOST. */
  timeout?: string;
  log?: string | null;
  /** How the attempt row ends; `stopping` when its worker may still run. */
  attemptState?: Attempt["state"];
  /** A fired totalTimeout ends the job whatever the retry policy says. */
  final?: boolean;
}

/**
 * How an attempt whose worker is gone ended — the one rule, for an exit and for a lost
 * worker alike: the exit code, unless the worker reported otherwise; a worker that
 * reported success and then vanished (an EC2 instance gone before it tagged its exit
 * code) ended as it reported.
 */
export function endOfWorker(attempt: Attempt, status: Extract<TargetStatus, { state: "exited" | "lost" }>): AttemptEnd {
  const reported = attempt.result;
  if (status.state === "lost") {
    if (reported?.success === true) return { outcome: "SUCCEEDED", reason: "the worker reported success; its worker is gone", attemptState: "exited" };
    return { outcome: "WORKER_LOST", reason: status.reason, attemptState: "lost" };
  }
  if (status.exitCode === 0 && reported?.success !== false) return { outcome: "SUCCEEDED", exitCode: 0, reason: "worker exited 0", attemptState: "exited" };
  return {
    outcome: "EXIT_NONZERO",
    exitCode: status.exitCode,
    reason: (typeof reported?.error === "string" ? reported.error : null) ?? status.reason ?? `worker exited with code ${status.exitCode}`,
    retryable: reported?.retryable !== false,
    attemptState: "exited",
  };
}

/**
 * The transition that ends the job's current attempt: succeeded, retrying with backoff,
 * or a final failure. A compare-and-set on the state, attempt and version the decision
 * was made on, so a stale decision changes nothing.
 */
export function endTransition(job: Job, attempt: Attempt, end: AttemptEnd, now: number, effects: EffectInput[] = [], random = Math.random): TransitionRequest {
  const attemptPatch: AttemptPatch = {
    state: end.attemptState ?? (end.outcome === "WORKER_LOST" ? "lost" : "exited"),
    endedAt: now,
    exitCode: end.exitCode ?? null,
    outcome: end.outcome,
    reason: end.reason,
    ...(end.log !== undefined && end.log !== null ? { log: end.log } : {}),
  };
  const data = { outcome: end.outcome, reason: end.reason, exitCode: end.exitCode ?? null, ...(end.timeout ? { timeout: end.timeout } : {}) };
  const base = { from: [job.state] as JobState[], expect: { attempt: attempt.attempt, version: job.version }, attempt: attemptPatch, now, effects, basis: { job, attempt } };

  if (end.outcome === "SUCCEEDED") {
    // What the worker reported, as it reported it (an imageUrl only from the task types that build one).
    const result: JobResult = { ...(attempt.result ?? {}) };
    return { ...base, to: "succeeded", patch: { result, error: null }, event: { data: { ...data, result } } };
  }
  if (!end.final && shouldRetry(job.retry, end.outcome, job.attempt, end.retryable !== false)) {
    const delay = backoffDelay(job.retry, job.attempt + 1, random);
    return { ...base, to: "retrying", patch: { runAfter: now + delay, error: { type: end.outcome, message: end.reason } }, event: { data: { ...data, delay, nextAttempt: job.attempt + 1 } } };
  }
  const to: JobState = end.outcome === "TIMED_OUT" ? "timed_out" : "failed";
  // A failed job shows what its last attempt reported (a build's error, its log message).
  return { ...base, to, patch: { result: attempt.result ?? null, error: { type: end.outcome, message: end.reason } }, event: { data } };
}
