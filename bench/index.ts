/**
 * `npm run bench`: job store throughput, as ratios against a baseline measured in the same
 * run (raw better-sqlite3 inserts into a table of the same width, one transaction each).
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS } from "../lib/jobs/policy";
import type { NewJob } from "../lib/jobs/model";
import { SecretBox } from "../lib/secrets/secret-box";
import { SqliteJobStore } from "../lib/store/sqlite/sqlite-store";

const N = Number(process.env.BENCH_JOBS ?? 5000);

function newJob(i: number): NewJob {
  return {
    id: `bench-${i}`, type: "build", state: "queued", deploymentId: `d${i % 100}`, priority: 0, target: "process", concurrencyKey: null,
    params: { deploymentId: `d${i % 100}`, repository: "https://github.com/a/b", branch: "main" }, secrets: { token: "x".repeat(40) },
    timeouts: DEFAULT_TIMEOUTS, retry: DEFAULT_RETRY, source: "rest", parentId: null, error: null, deadline: null, runAfter: null,
  };
}

async function time(fn: () => Promise<void> | void): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-bench-"));
  const raw = new Database(path.join(dir, "raw.db"));
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.exec("create table t (id text primary key, state text, payload text, created_at integer)");
  const insert = raw.prepare("insert into t values (?, ?, ?, ?)");
  const baseline = await time(() => {
    for (let i = 0; i < N; i++) raw.transaction(() => insert.run(`b-${i}`, "queued", JSON.stringify(newJob(i)), Date.now()))();
  });

  // Tokens are sealed as in production, so the figure includes AES-GCM.
  const store = new SqliteJobStore({ file: path.join(dir, "store.db"), secrets: new SecretBox(randomBytes(32)) });
  await store.migrate();
  const create = await time(async () => {
    for (let i = 0; i < N; i++) await store.createJob(newJob(i));
  });
  let claimed = 0;
  const claim = await time(async () => {
    for (;;) {
      const batch = await store.claimJobs({ now: Date.now(), limits: {}, max: 100 });
      if (!batch.length) break;
      claimed += batch.length;
    }
  });
  const transition = await time(async () => {
    for (let i = 0; i < N; i++) await store.transition(`bench-${i}`, { from: "launching", to: "running" });
  });
  await store.close();
  raw.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const per = (ms: number) => ((ms / N) * 1000).toFixed(1);
  const rows = [
    ["baseline: raw insert, 1 tx each", baseline],
    ["createJob (job + secret + event)", create],
    ["claimJobs (batches of 100)", claim],
    ["transition (CAS + event)", transition],
  ] as const;
  console.log(`job store benchmark, ${N} jobs (claimed ${claimed}), SQLite WAL`);
  for (const [name, ms] of rows) console.log(`${name.padEnd(36)} ${per(ms).padStart(8)} µs/job   ${(ms / baseline).toFixed(2)}× baseline`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
