import type { Job } from "./model";
import type { JobFilter, JobStore } from "../store/job-store";
import { FINAL_STATES } from "./states";

export const STATS_WINDOW_MS = 60 * 60 * 1000;
export const STATS_BUCKET_MS = 60 * 1000;
/** Most jobs read for one answer: the dashboard polls it, so it stays a few pages of the jobs index. */
export const STATS_MAX_JOBS = 2000;

export interface StatsBucket {
  /** Start of the minute, epoch ms. */
  at: number;
  succeeded: number;
  failed: number;
  /** Median and 95th percentile of submit-to-finish time of the jobs that finished in the minute, ms. */
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface JobStats {
  windowMs: number;
  bucketMs: number;
  buckets: StatsBucket[];
  /** True when more than STATS_MAX_JOBS jobs were created in the window: the oldest were not read. */
  truncated: boolean;
}

/**
 * Throughput and durations per minute over the last hour, from the jobs listing (newest
 * first) down to the first job created before the window. A job counts in the minute its
 * final transition was written (`updatedAt`); `succeeded` vs every other final state.
 */
export async function jobStats(store: JobStore, filter: Pick<JobFilter, "submittedBy" | "type" | "deploymentId">, now = Date.now()): Promise<JobStats> {
  const since = now - STATS_WINDOW_MS;
  const jobs: Job[] = [];
  let cursor: string | undefined;
  let truncated = false;
  for (;;) {
    const page = await store.listJobs({ ...filter, limit: 500, cursor });
    let older = false;
    for (const job of page.items) {
      if (job.createdAt < since) older = true;
      jobs.push(job);
    }
    if (older || !page.nextCursor) break;
    if (jobs.length >= STATS_MAX_JOBS) {
      truncated = true;
      break;
    }
    cursor = page.nextCursor;
  }
  return { windowMs: STATS_WINDOW_MS, bucketMs: STATS_BUCKET_MS, buckets: bucketize(jobs, now), truncated };
}

/** Pure: the per-minute buckets of the finished jobs among `jobs`. */
export function bucketize(jobs: Job[], now: number): StatsBucket[] {
  const first = Math.floor((now - STATS_WINDOW_MS) / STATS_BUCKET_MS) * STATS_BUCKET_MS + STATS_BUCKET_MS;
  const count = Math.floor((now - first) / STATS_BUCKET_MS) + 1;
  const durations: number[][] = Array.from({ length: count }, () => []);
  const buckets: StatsBucket[] = Array.from({ length: count }, (_, i) => ({ at: first + i * STATS_BUCKET_MS, succeeded: 0, failed: 0, p50Ms: null, p95Ms: null }));
  for (const job of jobs) {
    if (!FINAL_STATES.includes(job.state) || job.state === "rejected") continue;
    const i = Math.floor((job.updatedAt - first) / STATS_BUCKET_MS);
    if (i < 0 || i >= count) continue;
    if (job.state === "succeeded") buckets[i].succeeded++;
    else buckets[i].failed++;
    durations[i].push(Math.max(0, job.updatedAt - job.createdAt));
  }
  durations.forEach((d, i) => {
    if (d.length === 0) return;
    d.sort((a, b) => a - b);
    buckets[i].p50Ms = quantile(d, 0.5);
    buckets[i].p95Ms = quantile(d, 0.95);
  });
  return buckets;
}

/** Nearest-rank quantile of sorted values. */
function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
