import { blacktreeError } from "../errors";

/** The job state machine. This module owns the transition table; nothing else decides `state`. */
export const JOB_STATES = [
  "queued",
  "launching",
  "running",
  "retrying",
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
  "rejected",
] as const;

export type JobState = (typeof JOB_STATES)[number];

/** States in which the job is done: nothing runs and no clock acts on it. */
export const FINAL_STATES: readonly JobState[] = ["succeeded", "failed", "timed_out", "cancelled", "rejected"];
/** States in which an attempt holds compute: counted against concurrency limits. */
export const ACTIVE_STATES: readonly JobState[] = ["launching", "running"];

/** A job is born `queued` (runnable) or `rejected` (failed validation, kept for inspection). */
export const INITIAL_STATES: readonly JobState[] = ["queued", "rejected"];

const TABLE: Record<JobState, readonly JobState[]> = {
  queued: ["launching", "cancelled", "timed_out", "failed"],
  // A worker may finish before the reconciler ever sees it running.
  launching: ["running", "retrying", "succeeded", "failed", "timed_out", "cancelled"],
  running: ["succeeded", "failed", "timed_out", "retrying", "cancelled"],
  retrying: ["queued", "failed", "timed_out", "cancelled"],
  succeeded: [],
  // Only an operator's retry (POST /api/jobs/:id/retry) leaves these, as a new attempt.
  failed: ["queued"],
  timed_out: ["queued"],
  cancelled: ["queued"],
  rejected: [],
};

export function isJobState(value: unknown): value is JobState {
  return typeof value === "string" && (JOB_STATES as readonly string[]).includes(value);
}

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.includes(state);
}

export function canTransition(from: JobState, to: JobState): boolean {
  return TABLE[from].includes(to);
}

export function allowedFrom(from: JobState): readonly JobState[] {
  return TABLE[from];
}

/** The states from which `to` can be reached: the compare-and-set guard of a transition. */
export function sourcesOf(to: JobState): JobState[] {
  return JOB_STATES.filter((s) => TABLE[s].includes(to));
}

export function assertTransition(from: JobState, to: JobState): void {
  if (!canTransition(from, to)) {
    throw blacktreeError("INVALID_TRANSITION", `A job cannot go from '${from}' to '${to}'`, { from, to });
  }
}
