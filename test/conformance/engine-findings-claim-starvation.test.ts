/**
 * Finding 6 — jobs blocked by a limit starve the runnable jobs queued behind them.
 *
 * One `build` is active and byType.build is 1, so every queued build is blocked; a
 * `deploy` queued after them is runnable and must be claimed.
 *
 * FAILS ON MAIN: SqliteJobStore.claimJobs reads only `max * CLAIM_SCAN_FACTOR` = 20 × 20
 * = 400 queued rows (priority, then FIFO), all of them blocked builds when 450 (or 5,000)
 * are queued, and never reaches the deploy: claimJobs returns [] — assertion
 * `expected ["deploy-after-…"], received []`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SqliteJobStore } from "../../lib/store/sqlite/sqlite-store";
import { newJob } from "../support/jobs";

const T0 = 1_700_000_000_000;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-starve-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const job = (id: string, type: string) => newJob(id, { type });

const LIMITS = { global: 20, byType: { build: 1 } };

async function claimBehindBlockedBuilds(blocked: number) {
  const store = new SqliteJobStore({ file: path.join(root, `db-${blocked}`, "blacktree.db") });
  try {
    await store.migrate();
    await store.createJob(job("build-active", "build"), T0);
    expect((await store.claimJobs({ now: T0 + 1, limits: LIMITS, max: 1 })).map((c) => c.job.id)).toEqual(["build-active"]);
    for (let i = 0; i < blocked; i++) await store.createJob(job(`build-${String(i).padStart(5, "0")}`, "build"), T0 + 10 + i);
    const deployId = `deploy-after-${blocked}`;
    await store.createJob(job(deployId, "deploy"), T0 + 10 + blocked + 1);

    const claims = await store.claimJobs({ now: T0 + 100_000, limits: LIMITS, max: 20 });
    expect(claims.map((c) => c.job.id)).toEqual([deployId]);
    // The limit still holds for the builds.
    expect((await store.activeAttempts()).filter((a) => a.job.type === "build")).toHaveLength(1);
  } finally {
    await store.close();
  }
}

test("450 blocked builds do not hide the runnable deploy queued after them", async () => {
  await claimBehindBlockedBuilds(450);
});

test("5,000 blocked builds do not hide the runnable deploy queued after them", async () => {
  await claimBehindBlockedBuilds(5000);
}, 60_000);
