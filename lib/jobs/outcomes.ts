import type { JobStore } from "../store/job-store";
import type { Attempt, Job, JobResult } from "./model";
import { backoffDelay, FailureReason, shouldRetry } from "./policy";
import type { JobState } from "./states";

export interface AttemptEnd {
  outcome: FailureReason | "SUCCEEDED";
  exitCode?: number | null;
  reason: string;
  /** False when the worker or target said retrying cannot help. */
  retryable?: boolean;
  /** Which timeout fired, for TIMED_OUT. */
  timeout?: string;
  log?: string | null;
  attemptState?: Attempt["state"];
  /** A fired totalTimeout ends the job whatever the retry policy says. */
  final?: boolean;
}

/**
 * Ends the job's current attempt and moves the job on: succeeded, retrying with backoff,
 * or a final failure. A compare-and-set from the job's observed state, so when a cancel or
 * another node got there first this returns null and changes nothing.
 */
export async function endAttempt(store: JobStore, job: Job, end: AttemptEnd, now = Date.now(), random = Math.random): Promise<Job | null> {
  const attemptPatch = {
    state: end.attemptState ?? (end.outcome === "WORKER_LOST" ? "lost" : "exited"),
    endedAt: now,
    exitCode: end.exitCode ?? null,
    outcome: end.outcome,
    reason: end.reason,
    ...(end.log !== undefined ? { log: end.log } : {}),
  } as const;
  const data = { outcome: end.outcome, reason: end.reason, exitCode: end.exitCode ?? null, ...(end.timeout ? { timeout: end.timeout } : {}) };
  const from: JobState[] = [job.state];

  if (end.outcome === "SUCCEEDED") {
    const current = await store.getAttempt(job.id, job.attempt);
    const result: JobResult = { imageUrl: null, ...(current?.result ?? {}) };
    return store.transition(job.id, { from, to: "succeeded", patch: { result, error: null }, attempt: attemptPatch, event: { data: { ...data, result } }, now });
  }
  if (!end.final && shouldRetry(job.retry, end.outcome, job.attempt, end.retryable !== false)) {
    const delay = backoffDelay(job.retry, job.attempt + 1, random);
    return store.transition(job.id, {
      from,
      to: "retrying",
      patch: { runAfter: now + delay, error: { type: end.outcome, message: end.reason } },
      attempt: attemptPatch,
      event: { data: { ...data, delay, nextAttempt: job.attempt + 1 } },
      now,
    });
  }
  const to: JobState = end.outcome === "TIMED_OUT" ? "timed_out" : "failed";
  return store.transition(job.id, { from, to, patch: { error: { type: end.outcome, message: end.reason } }, attempt: attemptPatch, event: { data }, now });
}
