import path from "node:path";
import { dashboardDir } from "../../lib/gateway/dashboard";
import type { Job } from "../../lib/jobs/model";
import { bucketize, STATS_BUCKET_MS, STATS_WINDOW_MS } from "../../lib/jobs/stats";

const NOW = Date.parse("2026-01-01T10:30:40Z");
const job = (state: Job["state"], createdAt: number, updatedAt: number): Job => ({ state, createdAt, updatedAt }) as Job;

describe("activity buckets (GET /api/stats)", () => {
  test("one bucket per minute of the last hour, the current minute last", () => {
    const buckets = bucketize([], NOW);
    expect(buckets).toHaveLength(60);
    expect(buckets[59].at).toBe(Date.parse("2026-01-01T10:30:00Z"));
    expect(buckets[0].at).toBe(Date.parse("2026-01-01T09:31:00Z"));
    expect(buckets[0].at).toBeGreaterThan(NOW - STATS_WINDOW_MS);
    expect(buckets.every((b, i) => i === 0 || b.at - buckets[i - 1].at === STATS_BUCKET_MS)).toBe(true);
  });

  test("finished jobs count in the minute they ended, with nearest-rank p50 and p95 of submit-to-finish", () => {
    const minute = Date.parse("2026-01-01T10:29:00Z");
    const jobs = [
      ...[100, 200, 300, 400].map((ms, i) => job("succeeded", minute + i * 1000 - ms, minute + i * 1000)),
      job("failed", minute - 1000, minute + 5000),
      job("timed_out", minute - 2000, minute + 6000),
      job("cancelled", minute, minute + 7000),
      // Not finished, rejected (never ran), or ended before the window: not counted.
      job("running", minute, minute + 8000),
      job("rejected", minute, minute + 9000),
      job("succeeded", NOW - STATS_WINDOW_MS - 60_000, NOW - STATS_WINDOW_MS - 1),
    ];
    const b = bucketize(jobs, NOW).find((x) => x.at === minute)!;
    expect(b).toMatchObject({ succeeded: 4, failed: 3 });
    // Durations sorted: 100, 200, 300, 400, 6000, 7000, 8000 (rank 4 of 7, rank 7 of 7).
    expect(b.p50Ms).toBe(400);
    expect(b.p95Ms).toBe(8000);
    const others = bucketize(jobs, NOW).filter((x) => x.at !== minute);
    expect(others.every((x) => x.succeeded === 0 && x.failed === 0 && x.p50Ms === null)).toBe(true);
  });
});

describe("dashboard files", () => {
  test("found as dist/web of the package from the sources and from the build, only once built", () => {
    const root = path.resolve(__dirname, "../..");
    const fromSource = dashboardDir(path.join(root, "lib", "gateway"));
    const fromBuild = dashboardDir(path.join(root, "dist", "lib", "gateway"));
    expect(fromSource).toBe(fromBuild);
    if (fromSource !== null) expect(fromSource).toBe(path.join(root, "dist", "web"));
    expect(dashboardDir("/")).toBeNull();
  });
});
