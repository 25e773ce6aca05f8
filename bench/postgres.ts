/**
 * Section 6, PostgreSQL: the end-to-end figures of section 3 (publish on execute.queue →
 * legacy result on api.result, the no-op target, limits.global 50) with the PostgreSQL
 * store, each on a fresh database of the bench's own on the local server:
 * - 1 node (all services, no transporter);
 * - a cluster on NATS: a front node `gateway,intake,validator` and 2 back nodes
 *   `dispatcher,lifecycle,status,targets`, one unique NAMESPACE, shared secrets;
 * beside the single-node SQLite figure of the same run (section 3's when it ran with the same
 * burst, else measured here) and Graphile Worker 0.16 (no-op task, concurrency 50 like the
 * orchestrator's global limit, its pool 10 like the store's) on a fresh database of its own:
 * `addJob` → `job:success`. For each PostgreSQL system also: transactions per job
 * (pg_stat_database of that database, the idle rate subtracted), WAL bytes per job, CPU per
 * job of each node and of the database's backends, and jobs/s per dispatching node.
 */
import { ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { makeWorkerUtils, WorkerUtils } from "graphile-worker";
import { ServiceBroker } from "moleculer";
import { Pool } from "pg";
import type { Client } from "pg";
import { BenchBackend } from "./backend";
import { profileMarkdown, summarizeProfile } from "./cpu-profile";
import { burst, BurstRun, sequential } from "./e2e";
import { backendCpu, backendCpuDelta, BenchDatabase, createBenchDatabase, DbCounters, dbCounters, statsClient } from "./pg-admin";
import { DEFAULT_POOL_SIZE } from "../lib/store/postgres/postgres-store";
import { benchConfig, CONCURRENCY, OrchestratorNode, ROOT, track } from "./orchestrator-node";
import type { Results } from "./report";
import { latency, log, median, perSecond, processCpuMs, sleep, withTimeout } from "./stats";

const TSX = pathToFileURL(require.resolve("tsx")).href;
const SECTION = "6 PostgreSQL";
export const NATS_URL = process.env.BENCH_NATS_URL ?? "nats://127.0.0.1:4222";
/** Graphile Worker gets the store's pool size, so both wait on the same number of connections. */
const POOL = DEFAULT_POOL_SIZE;

export interface PgOptions {
  amqpUrl: string;
  burst: number;
  burstRuns: number;
  sequential: number;
  sequentialRuns: number;
  prefetch: number;
  /**
   * Wait before each counter reading: a backend that flushed its statistics less than 1 s
   * before it went idle keeps the rest pending until its next query or its exit (the pool
   * closes idle clients after 10 s), so only a wait of over 10 s makes pg_stat_database exact.
   */
  settleMs: number;
  /** Idle window whose transaction rate (sweeps, leases) is subtracted from each burst's. */
  idleMs: number;
}

/** A system under test: the orchestrator nodes, which of them dispatch, the database it uses. */
interface Orchestrator {
  nodes: Array<{ role: string; node: OrchestratorNode }>;
  dispatchers: number;
  db: BenchDatabase | null;
}

interface Measured {
  run: BurstRun;
  txPerJob: number | null;
  rollbacksPerJob: number | null;
  walBytesPerJob: number | null;
  walSyncsPerJob: number | null;
  cpuMsPerJob: Record<string, number>;
}

/** Counters around one burst: the database's transactions (settled), CPU of every process (at the ends of the burst). */
class Meter {
  private idleRate = 0;
  /** The last settled reading: the start of the next window (the window between holds only idle time). */
  private last: DbCounters | null = null;

  constructor(
    private readonly stats: Client | null,
    private readonly db: BenchDatabase | null,
    private readonly processes: Array<{ role: string; pid: () => number }>,
    private readonly opts: Pick<PgOptions, "settleMs" | "idleMs">,
  ) {}

  private async counters(): Promise<DbCounters | null> {
    if (!this.stats || !this.db) return null;
    await sleep(this.opts.settleMs);
    return dbCounters(this.stats, this.db.name);
  }

  /** Commits per second while nothing is submitted (sweeps, lease renewals, the sinks' idle reads). */
  async measureIdle(): Promise<number> {
    if (this.opts.idleMs <= 0) return 0;
    const a = await this.counters();
    if (!a) return 0;
    await sleep(this.opts.idleMs);
    const b = await dbCounters(this.stats!, this.db!.name);
    this.idleRate = ((b.commits - a.commits) * 1000) / (b.at - a.at);
    this.last = b;
    return this.idleRate;
  }

  async around(n: number, fn: () => Promise<BurstRun>): Promise<Measured> {
    const c0 = this.last ?? (await this.counters());
    const pg0 = this.stats && this.db ? await backendCpu(this.stats, this.db.name) : null;
    const cpu0 = this.processes.map((p) => ({ role: p.role, ms: processCpuMs(p.pid()) }));
    const run = await fn();
    const cpu1 = this.processes.map((p) => processCpuMs(p.pid()));
    const pg1 = this.stats && this.db ? await backendCpu(this.stats, this.db.name) : null;
    const c1 = await this.counters();
    this.last = c1;
    const cpuMsPerJob: Record<string, number> = {};
    cpu0.forEach((c, i) => (cpuMsPerJob[c.role] = (cpuMsPerJob[c.role] ?? 0) + (cpu1[i] - c.ms) / n));
    if (pg0 && pg1) cpuMsPerJob["PostgreSQL backends"] = backendCpuDelta(pg0, pg1) / n;
    if (!c0 || !c1) return { run, txPerJob: null, rollbacksPerJob: null, walBytesPerJob: null, walSyncsPerJob: null, cpuMsPerJob };
    const idle = (this.idleRate * (c1.at - c0.at)) / 1000;
    return {
      run,
      txPerJob: (c1.commits - c0.commits - idle) / n,
      rollbacksPerJob: (c1.rollbacks - c0.rollbacks) / n,
      walBytesPerJob: (c1.walBytes - c0.walBytes) / n,
      walSyncsPerJob: (c1.walSyncs - c0.walSyncs) / n,
      cpuMsPerJob,
    };
  }
}

const nodeEnv = (opts: PgOptions, extra: Record<string, string>) => ({ AMQP_PREFETCH: String(opts.prefetch), ...extra });

async function startSingle(opts: PgOptions, db: BenchDatabase | null): Promise<Orchestrator> {
  const node = await OrchestratorNode.start({ amqpUrl: opts.amqpUrl, config: benchConfig(), env: nodeEnv(opts, db ? { DATABASE_URL: db.url } : {}) });
  return { nodes: [{ role: "node", node }], dispatchers: 1, db };
}

/** Front `gateway,intake,validator` + 2 back nodes `dispatcher,lifecycle,status,targets` on NATS; ready once a watcher on the transporter sees every node's services. */
async function startCluster(opts: PgOptions, db: BenchDatabase): Promise<Orchestrator> {
  const namespace = `blacktree-bench-${process.pid}-${randomBytes(3).toString("hex")}`;
  const shared = {
    DATABASE_URL: db.url,
    TRANSPORTER: NATS_URL,
    NAMESPACE: namespace,
    BLACKTREE_SECRETS_KEY: randomBytes(32).toString("base64"),
    BLACKTREE_CALLBACK_SECRET: randomBytes(32).toString("hex"),
    BLACKTREE_API_KEY_PEPPER: randomBytes(32).toString("hex"),
  };
  const watcher = new ServiceBroker({ namespace, nodeID: `bench-watch-${process.pid}`, transporter: NATS_URL, logger: false, metrics: false, tracing: false });
  await watcher.start();
  const sees = (nodeID: string, services: string[]) => async () => {
    const list = watcher.registry.getServiceList({ onlyAvailable: true }) as unknown as Array<{ name: string; nodeID: string }>;
    return services.every((name) => list.some((s) => s.nodeID === nodeID && s.name === name));
  };
  const started: Array<{ role: string; node: OrchestratorNode }> = [];
  const start = async (role: string, nodeID: string, services: string, expect: string[], health: boolean) => {
    const node = await OrchestratorNode.start({
      amqpUrl: opts.amqpUrl,
      config: benchConfig(),
      env: nodeEnv(opts, { ...shared, SERVICES: services, NODE_ID: nodeID }),
      ready: async (n) => (!health || (await fetch(`${n.url}/health`).then((r) => r.ok, () => false))) && (await sees(nodeID, expect)()),
    });
    started.push({ role, node });
  };
  try {
    const back = "dispatcher,lifecycle,status,targets";
    const backServices = ["dispatcher", "lifecycle", "status", "targets.bench-noop"];
    await Promise.all([
      start("front", `bench-front-${process.pid}`, "gateway,intake,validator", ["gateway", "intake", "validator"], true),
      start("back 1", `bench-back-1-${process.pid}`, back, backServices, false),
      start("back 2", `bench-back-2-${process.pid}`, back, backServices, false),
    ]);
  } catch (err) {
    await Promise.all(started.map((s) => s.node.stop({ kill: true })));
    throw err;
  } finally {
    await watcher.stop();
  }
  // The front first, for the order of the table.
  started.sort((a, b) => a.role.localeCompare(b.role));
  return { nodes: started, dispatchers: 2, db };
}

interface SystemFigures {
  one: number[][];
  runs: Measured[];
}

async function measureOrchestrator(sys: Orchestrator, opts: PgOptions, stats: Client | null): Promise<SystemFigures> {
  const backend = await BenchBackend.connect(opts.amqpUrl);
  try {
    await burst(backend, 20); // warm-up: JIT, prepared statements, channels, pool connections
    if (opts.burst > 100) await burst(backend, Math.min(opts.burst, 200));
    const one: number[][] = [];
    for (let r = 0; r < opts.sequentialRuns; r++) one.push(await sequential(backend, opts.sequential));
    const meter = new Meter(stats, sys.db, sys.nodes.map((n) => ({ role: n.role, pid: () => n.node.pid })), opts);
    const idle = await meter.measureIdle();
    if (sys.db && opts.idleMs > 0) log("✅", `idle: ${idle.toFixed(1)} commits/s (subtracted from each burst)`);
    const runs: Measured[] = [];
    for (let r = 0; r < opts.burstRuns; r++) {
      const m = await meter.around(opts.burst, () => burst(backend, opts.burst));
      runs.push(m);
      const tx = m.txPerJob === null ? "" : `, ${m.txPerJob.toFixed(1)} tx/job`;
      log(m.run.failed ? "⚠️" : "✅", `burst ${r + 1}/${opts.burstRuns}: ${opts.burst} jobs, ${m.run.jobsPerSecond.toFixed(1)} jobs/s, p99 ${m.run.latency.p99.toFixed(0)} ms${tx}${m.run.failed ? `, ${m.run.failed} not successful` : ""}`);
    }
    return { one, runs };
  } finally {
    await backend.close();
  }
}

async function stopAll(sys: Orchestrator | null): Promise<void> {
  if (!sys) return;
  await Promise.all(sys.nodes.map((n) => n.node.stop()));
}

function addFigures(results: Results, key: string, name: string, opts: PgOptions, f: SystemFigures, dispatchers: number): void {
  const one = f.one.map((s) => latency(s));
  results.add(`pg.${key}.one.p50`, SECTION, `${name}: one job at a time (${opts.sequential} sequential), p50`, "ms", one.map((l) => l.p50));
  results.add(`pg.${key}.one.p99`, SECTION, `${name}: one job at a time (${opts.sequential} sequential), p99`, "ms", one.map((l) => l.p99));
  results.add(`pg.${key}.burst.rate`, SECTION, `${name}: burst of ${opts.burst}, throughput`, "jobs/s", f.runs.map((r) => r.run.jobsPerSecond));
  if (dispatchers > 1) results.add(`pg.${key}.burst.perNode`, SECTION, `${name}: jobs/s per back node`, "jobs/s", f.runs.map((r) => r.run.jobsPerSecond / dispatchers));
  results.add(`pg.${key}.burst.p50`, SECTION, `${name}: burst of ${opts.burst}, latency p50`, "ms", f.runs.map((r) => r.run.latency.p50));
  results.add(`pg.${key}.burst.p99`, SECTION, `${name}: burst of ${opts.burst}, latency p99`, "ms", f.runs.map((r) => r.run.latency.p99));
  const some = (pick: (m: Measured) => number | null) => f.runs.map(pick).filter((v): v is number => v !== null);
  const settled = opts.settleMs >= 10_500 ? `pg_stat_database, settled ${opts.settleMs / 1000} s, idle rate subtracted` : `quick: pg_stat_database after ${opts.settleMs} ms, nothing subtracted: approximate`;
  if (some((m) => m.txPerJob).length) {
    results.add(`pg.${key}.tx`, SECTION, `${name}: transactions per job`, "tx/job", some((m) => m.txPerJob), settled);
    results.add(`pg.${key}.rollbacks`, SECTION, `${name}: rollbacks per job`, "tx/job", some((m) => m.rollbacksPerJob));
    results.add(`pg.${key}.wal`, SECTION, `${name}: WAL per job`, "bytes/job", some((m) => m.walBytesPerJob), "server-wide: other databases' writes included");
    results.add(`pg.${key}.walSyncs`, SECTION, `${name}: WAL syncs per job`, "syncs/job", some((m) => m.walSyncsPerJob), "server-wide (pg_stat_wal)");
  }
  const roles = Object.keys(f.runs[0]?.cpuMsPerJob ?? {});
  for (const role of roles) {
    const ms = f.runs.map((r) => r.cpuMsPerJob[role]);
    const share = median(f.runs.map((r) => (r.cpuMsPerJob[role] * opts.burst) / ((opts.burst / r.run.jobsPerSecond) * 1000)));
    results.add(`pg.${key}.cpu.${role.replace(/\s+/g, "")}`, SECTION, `${name}: CPU per job, ${role}`, "ms/job", ms, `${(share * 100).toFixed(0)} % of a core during the burst`);
  }
}

/** Section 3's SQLite figures when it ran with the same burst; measured here otherwise. */
async function sqliteFigures(opts: PgOptions, results: Results): Promise<void> {
  const e2eRate = results.get("e2e.burst.rate");
  if (e2eRate && e2eRate.label.includes(`burst of ${opts.burst},`)) {
    for (const [from, to] of [
      ["e2e.one.p50", "one.p50"],
      ["e2e.burst.rate", "burst.rate"],
      ["e2e.burst.p99", "burst.p99"],
    ] as const) {
      const f = results.get(from);
      if (f) results.add(`pg.sqlite.${to}`, SECTION, `SQLite 1 node: ${f.label}`, f.unit, f.runs, "section 3 of this run");
    }
    return;
  }
  log("🔄", "PostgreSQL section: the single-node SQLite figure first (section 3 did not run with this burst)");
  let sys: Orchestrator | null = null;
  try {
    sys = await startSingle(opts, null);
    const f = await measureOrchestrator(sys, opts, null);
    addFigures(results, "sqlite", "SQLite 1 node", opts, f, 1);
  } finally {
    await stopAll(sys);
  }
}

export async function runPostgres(opts: PgOptions, results: Results): Promise<void> {
  await sqliteFigures(opts, results);
  const stats = await statsClient();
  try {
    for (const [key, name, start] of [
      ["one", "PostgreSQL 1 node", (db: BenchDatabase) => startSingle(opts, db)],
      ["two", "PostgreSQL 2 back nodes", (db: BenchDatabase) => startCluster(opts, db)],
    ] as const) {
      const db = await createBenchDatabase(key === "one" ? "one_node" : "two_nodes");
      log("🔄", `${name}: database ${db.name}${key === "two" ? `, front + 2 back nodes on ${NATS_URL}` : ""}`);
      let sys: Orchestrator | null = null;
      try {
        sys = await start(db);
        const f = await measureOrchestrator(sys, opts, stats);
        addFigures(results, key, name, opts, f, sys.dispatchers);
      } finally {
        await stopAll(sys);
        await db.drop();
      }
    }
    await runGraphile(opts, stats, results);
  } finally {
    await stats.end();
  }
}

// ---- Graphile Worker ----

class GraphileBench {
  private readonly done = new Map<string, (at: number) => void>();
  private seq = 0;

  constructor(
    readonly utils: WorkerUtils,
    worker: ChildProcess,
  ) {
    worker.on("message", (m: { done?: string[] }) => {
      const at = performance.now();
      for (const id of m.done ?? []) {
        this.done.get(id)?.(at);
        this.done.delete(id);
      }
    });
  }

  private completed(id: string, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Graphile Worker job ${id} not completed within ${timeoutMs} ms`)), timeoutMs);
      this.done.set(id, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }

  async burst(n: number): Promise<BurstRun> {
    const tag = this.seq++;
    const ids = Array.from({ length: n }, (_, i) => `g${tag}-${i}`);
    const sent: number[] = [];
    const waits: Array<Promise<number>> = [];
    const adds: Array<Promise<unknown>> = [];
    const t0 = performance.now();
    for (const id of ids) {
      waits.push(this.completed(id, 60_000 + n * 100));
      sent.push(performance.now());
      adds.push(this.utils.addJob("noop", { id }));
    }
    await Promise.all(adds);
    const at = await Promise.all(waits);
    return { jobsPerSecond: perSecond(n, Math.max(...at) - t0), latency: latency(at.map((a, i) => a - sent[i])), failed: 0 };
  }

  async sequential(n: number): Promise<number[]> {
    const tag = this.seq++;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = `s${tag}-${i}`;
      const wait = this.completed(id, 30_000);
      const t0 = performance.now();
      await this.utils.addJob("noop", { id });
      out.push((await wait) - t0);
    }
    return out;
  }
}

function startGraphileWorker(url: string): Promise<ChildProcess> {
  const child = track(spawn(process.execPath, ["--import", TSX, path.join(ROOT, "bench/graphile-worker.ts"), url, String(CONCURRENCY), String(POOL)], { cwd: ROOT, stdio: ["ignore", "inherit", "pipe", "ipc"] }));
  let stderr = "";
  // Its pool (10) is below its concurrency (50) on purpose (the store's pool size): that one warning is expected.
  child.stderr!.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
    for (const line of c.toString().split("\n")) if (line.trim() && !/maxPoolSize .* smaller than concurrency/.test(line)) process.stderr.write(`${line}\n`);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the Graphile worker did not start in 60 s")), 60_000);
    child.on("message", (m) => {
      if (m === "ready") {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code) => reject(new Error(`the Graphile worker exited with ${code}: ${stderr}`)));
  });
}

async function runGraphile(opts: PgOptions, stats: Client, results: Results): Promise<void> {
  const db = await createBenchDatabase("graphile");
  log("🔄", `Graphile Worker 0.16: database ${db.name}, no-op task, concurrency ${CONCURRENCY}, pool ${POOL}`);
  let worker: ChildProcess | null = null;
  let utils: WorkerUtils | null = null;
  let pool: Pool | null = null;
  try {
    worker = await startGraphileWorker(db.url);
    // Our own pool, ended (awaited) before the database is dropped: WorkerUtils' release does not wait for its pool.
    pool = new Pool({ connectionString: db.url, max: POOL });
    pool.on("error", () => undefined);
    utils = await makeWorkerUtils({ pgPool: pool });
    const bench = new GraphileBench(utils, worker);
    await bench.burst(Math.min(opts.burst, 500)); // warm-up
    const one: number[][] = [];
    for (let r = 0; r < opts.sequentialRuns; r++) one.push(await bench.sequential(opts.sequential));
    const w = worker;
    const meter = new Meter(stats, db, [{ role: "worker", pid: () => w.pid! }], opts);
    const idle = await meter.measureIdle();
    if (opts.idleMs > 0) log("✅", `idle: ${idle.toFixed(1)} commits/s (subtracted from each burst)`);
    const runs: Measured[] = [];
    for (let r = 0; r < opts.burstRuns; r++) {
      const m = await meter.around(opts.burst, () => bench.burst(opts.burst));
      runs.push(m);
      log("✅", `Graphile burst ${r + 1}/${opts.burstRuns}: ${m.run.jobsPerSecond.toFixed(0)} jobs/s, p99 ${m.run.latency.p99.toFixed(0)} ms, ${m.txPerJob?.toFixed(1)} tx/job`);
    }
    addFigures(results, "graphile", "Graphile Worker", opts, { one, runs }, 1);
  } finally {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once("exit", r));
      worker.kill("SIGTERM");
      await withTimeout(exited, 5000, () => undefined);
      if (worker.exitCode === null) worker.kill("SIGKILL");
    }
    await Promise.resolve(utils?.release()).catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await db.drop();
  }
}

// ---- profile ----

/**
 * `--cpu-prof --only=pg`: one PostgreSQL node run with --cpu-prof and the statement counter
 * (bench/pg-statements.js) during one burst; returns the Markdown of both.
 */
export async function profilePgBurst(opts: { amqpUrl: string; burst: number; prefetch: number; dir: string }): Promise<string> {
  const db = await createBenchDatabase("profile");
  const statsFile = path.join(opts.dir, "statements.json");
  let run: BurstRun;
  try {
    const node = await OrchestratorNode.start({
      amqpUrl: opts.amqpUrl,
      config: benchConfig(),
      env: { AMQP_PREFETCH: String(opts.prefetch), DATABASE_URL: db.url, BENCH_PG_STATEMENTS: statsFile },
      cpuProfDir: opts.dir,
      nodeArgs: ["--require", path.join(ROOT, "bench/pg-statements.js")],
    });
    const backend = await BenchBackend.connect(opts.amqpUrl);
    try {
      await burst(backend, 20);
      await burst(backend, Math.min(200, opts.burst));
      await sleep(500);
      process.kill(node.pid, "SIGUSR2"); // count the burst only
      await sleep(100);
      run = await burst(backend, opts.burst);
    } finally {
      await backend.close();
      await node.stop();
    }
  } finally {
    await db.drop();
  }
  const file = fs.readdirSync(opts.dir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error(`the node wrote no .cpuprofile into ${opts.dir}`);
  const summary = summarizeProfile(path.join(opts.dir, file), path.join(ROOT, "dist"), 15);
  const md = profileMarkdown(summary, `CPU profile of a PostgreSQL node (1 node, all services), end-to-end burst of ${opts.burst} (${run.jobsPerSecond.toFixed(1)} jobs/s under the profiler)`);
  const counted = JSON.parse(fs.readFileSync(statsFile, "utf8")) as { statements: number; transactions: number; shapes: Array<{ shape: string; n: number; ms: number }> };
  const n = opts.burst;
  const rows = counted.shapes.slice(0, 25).map((s) => `| ${(s.n / n).toFixed(2)} | ${(s.ms / s.n).toFixed(2)} | ${((s.ms / n)).toFixed(2)} | \`${s.shape.replace(/\|/g, "\\|")}\` |`);
  return [
    md,
    `## Statements the node sent during the burst (bench/pg-statements.js)`,
    "",
    `${counted.statements} statements (${(counted.statements / n).toFixed(1)} per job) in ${counted.transactions} transactions (${(counted.transactions / n).toFixed(1)} per job), counted at the client; the idle sweeps of the burst's seconds included.`,
    "",
    "| per job | ms each (answer wait) | ms per job | statement |",
    "|---|---|---|---|",
    ...rows,
    "",
  ].join("\n");
}
