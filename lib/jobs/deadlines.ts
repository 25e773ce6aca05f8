import type { Attempt, Job } from "./model";
import type { Timeouts } from "./policy";

/** A timeout that applies to a job now, and when it fires (epoch ms). */
export interface Deadline {
  timeout: keyof Timeouts;
  ms: number;
  at: number;
  /** A silent worker is lost; every other timeout is a timeout. */
  outcome: "TIMED_OUT" | "WORKER_LOST";
}

/**
 * Every deadline of a job in its current state, from stored timestamps (so a restart
 * resumes them rather than resetting them). The one place that says when a job times out:
 * the store derives the job's wake-up from it and the clock decides with it.
 */
export function deadlinesOf(job: Job, attempt: Attempt | null): Deadline[] {
  const t = job.timeouts;
  const out: Deadline[] = [];
  const add = (timeout: keyof Timeouts, from: number | null) => {
    if (t[timeout] && from !== null) out.push({ timeout, ms: t[timeout], at: from + t[timeout], outcome: timeout === "heartbeatTimeout" ? "WORKER_LOST" : "TIMED_OUT" });
  };
  if (job.deadline !== null && isLive(job)) out.push({ timeout: "totalTimeout", ms: t.totalTimeout, at: job.deadline, outcome: "TIMED_OUT" });
  // Queued since its last change of state: a job waiting in the queue changes only by leaving it.
  if (job.state === "queued") add("queueTimeout", job.updatedAt);
  const current = attempt && attempt.attempt === job.attempt ? attempt : null;
  if (job.state === "launching" && current && current.startedAt === null) add("startTimeout", current.launchedAt);
  if ((job.state === "running" || job.state === "launching") && current && current.startedAt !== null) {
    add("runTimeout", current.startedAt);
    add("heartbeatTimeout", current.heartbeatAt ?? current.startedAt);
  }
  return out;
}

/** The deadline that has fired at `now`, the whole-job one first; null when none has. */
export function firedDeadline(job: Job, attempt: Attempt | null, now: number): Deadline | null {
  const fired = deadlinesOf(job, attempt).filter((d) => d.at <= now);
  return fired.find((d) => d.timeout === "totalTimeout") ?? fired.sort((a, b) => a.at - b.at)[0] ?? null;
}

/** When the clock must next look at the job: its first deadline, or the end of its backoff; null for a final job. */
export function wakeAt(job: Job, attempt: Attempt | null): number | null {
  if (!isLive(job)) return null;
  const times = deadlinesOf(job, attempt).map((d) => d.at);
  if (job.state === "retrying" && job.runAfter !== null) times.push(job.runAfter);
  return times.length ? Math.min(...times) : null;
}

function isLive(job: Job): boolean {
  return job.state === "queued" || job.state === "launching" || job.state === "running" || job.state === "retrying";
}
