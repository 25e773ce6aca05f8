/**
 * The job store micro-benchmark (the first `npm run bench`): SQLite store operations in this
 * process, against a baseline measured in the same run (raw better-sqlite3 inserts into a
 * table of the same width, one transaction each).
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
import type { Results } from "./report";
import { log } from "./stats";

function newJob(i: number): NewJob {
  return {
    id: `bench-${i}`, type: "build", state: "queued", deploymentId: `d${i % 100}`, priority: 0, target: "process", concurrencyKey: null,
    params: { deploymentId: `d${i % 100}`, repository: "https://github.com/a/b", branch: "main" }, secrets: { token: "x".repeat(40) },
    timeouts: DEFAULT_TIMEOUTS, retry: DEFAULT_RETRY, source: "rest", parentId: null, error: null, deadline: null, runAfter: null,
  };
}

async function time(fn: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** One run: ms for `n` of each operation. */
async function storeRun(n: number): Promise<Record<"baseline" | "create" | "claim" | "transition", number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-bench-store-"));
  try {
    const raw = new Database(path.join(dir, "raw.db"));
    raw.pragma("journal_mode = WAL");
    raw.pragma("synchronous = NORMAL");
    raw.exec("create table t (id text primary key, state text, payload text, created_at integer)");
    const insert = raw.prepare("insert into t values (?, ?, ?, ?)");
    const baseline = await time(() => {
      for (let i = 0; i < n; i++) raw.transaction(() => insert.run(`b-${i}`, "queued", JSON.stringify(newJob(i)), Date.now()))();
    });
    raw.close();
    // Tokens are sealed as in production, so the figure includes AES-GCM.
    const store = new SqliteJobStore({ file: path.join(dir, "store.db"), secrets: new SecretBox(randomBytes(32)) });
    await store.migrate();
    const create = await time(async () => {
      for (let i = 0; i < n; i++) await store.createJob(newJob(i));
    });
    const claim = await time(async () => {
      while ((await store.claimJobs({ now: Date.now(), limits: {}, max: 100 })).length);
    });
    const transition = await time(async () => {
      for (let i = 0; i < n; i++) await store.transition(`bench-${i}`, { from: "launching", to: "running" });
    });
    await store.close();
    return { baseline, create, claim, transition };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function runStore(opts: { jobs: number; runs: number }, results: Results): Promise<void> {
  log("🔄", `job store: ${opts.runs} runs × ${opts.jobs} jobs, SQLite WAL, in this process`);
  const runs = [];
  for (let r = 0; r < opts.runs; r++) runs.push(await storeRun(opts.jobs));
  const us = (ms: number) => (ms / opts.jobs) * 1000;
  const rows = [
    ["baseline", "baseline: raw insert, 1 tx each"],
    ["create", "createJob (job + secret + event)"],
    ["claim", "claimJobs (batches of 100)"],
    ["transition", "transition (CAS + event)"],
  ] as const;
  for (const [k, label] of rows) {
    const note = k === "baseline" ? undefined : `${(runs.map((r) => r[k] / r.baseline).sort((a, b) => a - b)[runs.length >> 1]).toFixed(2)}× baseline`;
    results.add(`store.${k}`, "0 job store", label, "µs/job", runs.map((r) => us(r[k])), note);
  }
  log("✅", "job store done");
}
