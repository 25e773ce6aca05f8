import type { JobStore } from "../store/job-store";
import type { ActiveCounts, Limits } from "./limits";
import { countJob, emptyCounts, exceededScope } from "./limits";
import type { Job } from "./model";

export type LimitScope = "global" | "type" | "target" | "key";

/** What holds a queued (or retrying) job, as `GET /api/jobs/:id` reports it in `waiting`. */
export type Waiting =
  | { reason: "limit"; limit: { scope: LimitScope; name: string; max: number; inUse: number }; position: number }
  | { reason: "backoff"; until: string }
  | { reason: "scheduled"; until: string }
  | { reason: "next" };

/** Queued jobs read to rank a job in its scope: a position beyond them is reported as this + 1. */
export const WAITING_SCAN = 10_000;

type Scoped = Pick<Job, "type" | "target" | "concurrencyKey">;

interface Scope {
  scope: LimitScope;
  name: string;
  max: number;
  inUse: number;
  holds(job: Scoped): boolean;
}

/** The limited scopes a job belongs to, in the order the claim checks them (`exceededScope`). */
function scopesOf(job: Scoped, limits: Limits, counts: ActiveCounts): Scope[] {
  const out: Scope[] = [];
  if (limits.global !== undefined) out.push({ scope: "global", name: "global", max: limits.global, inUse: counts.global, holds: () => true });
  const byType = limits.byType?.[job.type];
  if (byType !== undefined) out.push({ scope: "type", name: job.type, max: byType, inUse: counts.byType.get(job.type) ?? 0, holds: (j) => j.type === job.type });
  const byTarget = job.target ? limits.byTarget?.[job.target] : undefined;
  if (byTarget !== undefined) out.push({ scope: "target", name: job.target!, max: byTarget, inUse: counts.byTarget.get(job.target!) ?? 0, holds: (j) => j.target === job.target });
  if (job.concurrencyKey) {
    out.push({ scope: "key", name: job.concurrencyKey, max: limits.perKey ?? 1, inUse: counts.byKey.get(job.concurrencyKey) ?? 0, holds: (j) => j.concurrencyKey === job.concurrencyKey });
  }
  return out;
}

/** The claim's order: priority first, then the oldest (`claimOrder` in the store). */
function claimsBefore(a: Job, b: Job): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.createdAt !== b.createdAt ? a.createdAt < b.createdAt : a.id < b.id;
}

/**
 * Why a job has not started, from the store and the limits the claim applies: a retry's
 * backoff, a start time not reached, the first limit that admits no further job now (with
 * the job's place among the queued jobs of that scope), or a limit whose free places the
 * jobs before it will take. Otherwise it is next: the next claim takes it. Undefined for a
 * job in any other state.
 */
export async function whyWaiting(store: JobStore, job: Job, limits: Limits, now: number): Promise<Waiting | undefined> {
  if (job.state === "retrying") return { reason: "backoff", until: new Date(job.runAfter ?? now).toISOString() };
  if (job.state !== "queued") return undefined;
  if (job.runAfter !== null && job.runAfter > now) return { reason: "scheduled", until: new Date(job.runAfter).toISOString() };

  // What holds compute now, counted as the claim counts it (an attempt's own target).
  const counts = emptyCounts();
  for (const { job: j, attempt } of await store.activeAttempts()) countJob(counts, { type: j.type, target: attempt.target, concurrencyKey: j.concurrencyKey });
  const scopes = scopesOf(job, limits, counts);
  if (!scopes.length) return { reason: "next" };

  const queued = (await store.jobsInStates(["queued"], WAITING_SCAN)).filter((j) => j.id !== job.id && (j.runAfter === null || j.runAfter <= now));
  const rank = (scope: Scope, ahead: (j: Job) => boolean) => 1 + queued.filter((j) => scope.holds(j) && claimsBefore(j, job) && ahead(j)).length;

  // A full scope: the job waits for a place there, behind the scope's jobs before it.
  const full = exceededScope(counts, job, limits);
  if (full !== null) {
    const scope = scopes.find((s) => (s.scope === "global" ? full === "global" : full === `${s.scope}:${s.name}`))!;
    return { reason: "limit", limit: { scope: scope.scope, name: scope.name, max: scope.max, inUse: scope.inUse }, position: rank(scope, () => true) };
  }
  // A scope with free places that the jobs before it (each able to start now) will take first.
  for (const scope of scopes) {
    const position = rank(scope, (j) => exceededScope(counts, j, limits) === null);
    if (position > scope.max - scope.inUse) return { reason: "limit", limit: { scope: scope.scope, name: scope.name, max: scope.max, inUse: scope.inUse }, position };
  }
  return { reason: "next" };
}
