/**
 * Claiming from several OS processes on one SQLite file: 3 child processes
 * (test/support/claim-worker.ts under tsx) loop claimJobs over 2,000 queued jobs with a
 * global, per-type and per-key limit, hold each claimed job briefly and end it; the parent
 * samples what is active (one consistent read each) while they run.
 *
 * EXPECTED TO PASS ON MAIN (claimJobs is one BEGIN IMMEDIATE transaction that counts what
 * is active and claims within it); it guards the rewrite. It fails if a job is claimed
 * twice (or never), or if any sample shows more active jobs than a limit allows.
 */
import { ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { NewJob } from "../../../lib/jobs/model";
import type { JobStore } from "../../../lib/store/job-store";
import { PostgresJobStore } from "../../../lib/store/postgres/postgres-store";
import { SqliteJobStore } from "../../../lib/store/sqlite/sqlite-store";
import { createDatabase } from "../../support/postgres";
import { tempDir } from "../../support/orchestrator";
import { newJob } from "../../support/jobs";

const TSX = pathToFileURL(require.resolve("tsx")).href;
const WORKER = path.join(__dirname, "../../support/claim-worker.ts");
const PROCESSES = 3;
const JOBS = 2000;
const TYPES = ["build", "deploy", "test"] as const;
const KEYS = 40;
const LIMITS = { global: 10, byType: { build: 4, deploy: 3, test: 5 }, perKey: 1 };

function job(i: number): NewJob {
  return newJob(`mp-${String(i).padStart(4, "0")}`, { type: TYPES[i % TYPES.length], priority: i % 7 === 0 ? 5 : 0, concurrencyKey: `k-${i % KEYS}` });
}

/** Where the claimers' shared store is: a SQLite file or a PostgreSQL database. */
type Where = { STORE_FILE: string } | { DATABASE_URL: string };

function startClaimer(where: Where) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ["--import", TSX, WORKER], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...where, LIMITS: JSON.stringify(LIMITS), MAX_PER_CLAIM: "5", HOLD_MS: "15" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.startsWith("ready\n")) onReady();
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<string[]>((resolve, reject) =>
    child.on("close", (code) => {
      onReady();
      if (code !== 0) return reject(new Error(`claimer exited with ${code}: ${stderr}`));
      resolve(JSON.parse(stdout.slice("ready\n".length)) as string[]);
    }),
  );
  return { child, ready, done };
}

describe.each([
  ["SQLite file", async () => {
    const file = path.join(tempDir("blacktree-claims-"), "blacktree.db");
    return { where: { STORE_FILE: file } as Where, open: () => new SqliteJobStore({ file }) as JobStore, drop: async () => undefined };
  }],
  ["PostgreSQL database", async () => {
    const db = await createDatabase("claims");
    return { where: { DATABASE_URL: db.url } as Where, open: () => new PostgresJobStore({ url: db.url }) as JobStore, drop: () => db.drop() };
  }],
])("%s", (_name, shared) => {
test(`${PROCESSES} processes claiming ${JOBS} jobs from one store: no job claimed twice, no limit ever exceeded`, async () => {
  const { where, open, drop } = await shared();
  const seed = open();
  await seed.migrate();
  await seed.createJobs(Array.from({ length: JOBS }, (_, i) => job(i)), 1_700_000_000_000);
  await seed.close();

  const claimers = Array.from({ length: PROCESSES }, () => startClaimer(where));
  const sampler = open();
  const violations: string[] = [];
  const max = { global: 0, build: 0, deploy: 0, test: 0, perKey: 0 };
  let samples = 0;
  try {
    await Promise.all(claimers.map((c) => c.ready));
    for (const c of claimers) c.child.stdin.write("go\n");
    let finished = false;
    const all = Promise.all(claimers.map((c) => c.done)).finally(() => (finished = true));
    while (!finished) {
      const active = await sampler.activeAttempts(); // one consistent read of what holds compute
      samples += 1;
      const byType = new Map<string, number>();
      const byKey = new Map<string, number>();
      for (const { job: j } of active) {
        byType.set(j.type, (byType.get(j.type) ?? 0) + 1);
        byKey.set(j.concurrencyKey!, (byKey.get(j.concurrencyKey!) ?? 0) + 1);
      }
      max.global = Math.max(max.global, active.length);
      for (const t of TYPES) max[t] = Math.max(max[t], byType.get(t) ?? 0);
      max.perKey = Math.max(max.perKey, ...byKey.values(), 0);
      if (active.length > LIMITS.global) violations.push(`sample ${samples}: ${active.length} active > global ${LIMITS.global}`);
      for (const t of TYPES) if ((byType.get(t) ?? 0) > LIMITS.byType[t]) violations.push(`sample ${samples}: ${byType.get(t)} ${t} > ${LIMITS.byType[t]}`);
      for (const [k, n] of byKey) if (n > LIMITS.perKey) violations.push(`sample ${samples}: ${n} active with key ${k}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const claimed = (await all).flat();

    expect(violations).toEqual([]);
    expect(samples).toBeGreaterThan(20); // the sampler did watch them run
    expect(max.global).toBeGreaterThan(1); // and they ran side by side
    const counts = new Map<string, number>();
    for (const id of claimed) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    expect(counts.size).toBe(JOBS);
    const states = await sampler.countByState();
    expect(states.filter((s) => s.state !== "succeeded")).toEqual([]);
    expect((await sampler.readEvents(0, 100_000)).filter((e) => e.kind === "job.launching")).toHaveLength(JOBS);
  } finally {
    for (const c of claimers) if (c.child.exitCode === null) c.child.kill("SIGKILL");
    await sampler.close();
    await drop();
  }
}, 90_000);
});
