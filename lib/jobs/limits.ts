import type { Job } from "./model";

/** Concurrency limits by scope; an absent limit means no limit. */
export interface Limits {
  global?: number;
  byType?: Record<string, number>;
  byTarget?: Record<string, number>;
  /** Active jobs allowed per concurrency key (e.g. per deploymentId). Default 1. */
  perKey?: number;
}

/** What holds compute now, counted from the store (never a counter that can leak). */
export interface ActiveCounts {
  global: number;
  byType: Map<string, number>;
  byTarget: Map<string, number>;
  byKey: Map<string, number>;
}

export function emptyCounts(): ActiveCounts {
  return { global: 0, byType: new Map(), byTarget: new Map(), byKey: new Map() };
}

type Scoped = Pick<Job, "type" | "target" | "concurrencyKey">;

export function countJob(counts: ActiveCounts, job: Scoped, n = 1): void {
  counts.global += n;
  bump(counts.byType, job.type, n);
  if (job.target) bump(counts.byTarget, job.target, n);
  if (job.concurrencyKey) bump(counts.byKey, job.concurrencyKey, n);
}

/** Returns the first scope a job would exceed, or null when it fits. */
export function exceededScope(counts: ActiveCounts, job: Scoped, limits: Limits): string | null {
  if (limits.global !== undefined && counts.global >= limits.global) return "global";
  const byType = limits.byType?.[job.type];
  if (byType !== undefined && (counts.byType.get(job.type) ?? 0) >= byType) return `type:${job.type}`;
  const byTarget = job.target ? limits.byTarget?.[job.target] : undefined;
  if (byTarget !== undefined && (counts.byTarget.get(job.target!) ?? 0) >= byTarget) return `target:${job.target}`;
  if (job.concurrencyKey && (counts.byKey.get(job.concurrencyKey) ?? 0) >= (limits.perKey ?? 1)) return `key:${job.concurrencyKey}`;
  return null;
}

function bump(map: Map<string, number>, key: string, n: number) {
  map.set(key, (map.get(key) ?? 0) + n);
}

/** The scopes that admit no further job now: a claim leaves their jobs out of its query. */
export function blockedScopes(counts: ActiveCounts, limits: Limits): { types: string[]; targets: string[]; keys: string[] } {
  const full = (map: Map<string, number>, limit: (name: string) => number | undefined) => [...map].filter(([name, n]) => {
    const max = limit(name);
    return max !== undefined && n >= max;
  }).map(([name]) => name);
  return {
    // A limit of 0 blocks a scope that holds nothing yet.
    types: [...new Set([...full(counts.byType, (t) => limits.byType?.[t]), ...zeroLimits(limits.byType)])],
    targets: [...new Set([...full(counts.byTarget, (t) => limits.byTarget?.[t]), ...zeroLimits(limits.byTarget)])],
    keys: full(counts.byKey, () => limits.perKey ?? 1),
  };
}

function zeroLimits(byScope: Record<string, number> | undefined): string[] {
  return Object.entries(byScope ?? {}).filter(([, n]) => n <= 0).map(([name]) => name);
}
