/**
 * `npm run bench` (`-- --quick` for a run under a minute, `-- --cpu-prof` for a profile of
 * the orchestrator during an end-to-end burst, `-- --only=raw,e2e,…` for some sections).
 * Sections: store (job store micro-benchmark), raw (amqplib baseline), e2e (intake + end to
 * end through a real orchestrator process), bullmq, scale (queued jobs), aws (Fargate
 * reconcile on the emulator), pg (the PostgreSQL store on 1 node and on a front + 2 back
 * nodes cluster, beside SQLite and Graphile Worker). Prints a table and writes
 * bench/results/<stamp>.{json,md}. `--cpu-prof --only=pg` profiles a PostgreSQL node instead.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BenchBackend } from "./backend";
import { runBullmq } from "./bullmq";
import { profileMarkdown, summarizeProfile } from "./cpu-profile";
import { profileBurst, runE2e } from "./e2e";
import { ensureBuilt, ROOT } from "./orchestrator-node";
import { runRawAmqp } from "./raw-amqp";
import { checkGoals, Machine, printReport, Results, stamp, writeReport } from "./report";
import { dropBenchDatabases } from "./pg-admin";
import { profilePgBurst, runPostgres } from "./postgres";
import { runScale } from "./scale";
import { log, withTimeout } from "./stats";
import { runStore } from "./store";
import { createVhost, Vhost } from "./vhost";

const SECTIONS = ["store", "raw", "e2e", "bullmq", "scale", "aws", "pg"] as const;
type Section = (typeof SECTIONS)[number];

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const cpuProf = args.includes("--cpu-prof");
const onlyArg = args.find((a) => a.startsWith("--only="));
const only = new Set<Section>(onlyArg ? (onlyArg.slice(7).split(",") as Section[]) : SECTIONS);
for (const s of only) if (!SECTIONS.includes(s)) throw new Error(`unknown section '${s}': use ${SECTIONS.join(", ")}`);

/** The orchestrator's execute.queue prefetch (its default); the raw baseline is measured at it too. */
const PREFETCH = Number(process.env.BENCH_PREFETCH ?? 32);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

const plan = quick
  ? { store: { jobs: 1000, runs: 3 }, raw: { messages: 1000, runs: 3 }, burst: 100, burstRuns: 3, sequential: 3, sequentialRuns: 3, intake: 300, intakeRuns: 3, scale: { counts: [10_000], starts: 1, windows: 3, windowMs: 1500 }, aws: { tasks: 100, runs: 1 }, pg: { sequential: 1, settleMs: 200, idleMs: 0 } }
  : { store: { jobs: 5000, runs: 3 }, raw: { messages: 5000, runs: 3 }, burst: 2000, burstRuns: 3, sequential: 30, sequentialRuns: 3, intake: 5000, intakeRuns: 3, scale: { counts: [10_000, 100_000], starts: 3, windows: 1, windowMs: 10_000 }, aws: { tasks: 1000, runs: 3 }, pg: { sequential: 30, settleMs: 11_000, idleMs: 5000 } };

function git(...a: string[]): string {
  try {
    return execFileSync("git", a, { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const cpus = os.cpus();
  const machine: Machine = { cores: cpus.length, cpu: cpus[0]?.model ?? "unknown", memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadStart: os.loadavg() };
  log("🔄", `npm run bench${quick ? " --quick" : ""}${cpuProf ? " --cpu-prof" : ""}: ${machine.cores} cores, load ${machine.loadStart.map((l) => l.toFixed(2)).join(" / ")}`);
  const needsNode = cpuProf || only.has("e2e") || only.has("scale") || only.has("aws") || only.has("pg");
  if (needsNode) ensureBuilt();
  const needsAmqp = needsNode || only.has("raw");
  let vhost: Vhost | null = null;
  const cleanup = async () => {
    try {
      vhost?.delete();
    } catch (err) {
      log("⚠️", `could not delete vhost ${vhost?.name}: ${(err as Error).message}`);
    }
    await dropBenchDatabases();
  };
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    // `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and relayed by tsx), and a second signal must not end the cleanup.
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      log("❌", `${signal}: stopping, deleting vhost ${vhost?.name ?? "(none)"} and the bench's databases`);
      // The exit hook kills the orchestrator children; dropping a database ends their connections to it.
      void withTimeout(cleanup(), 20_000, () => undefined).finally(() => process.exit(130));
    });
  }
  // An error event nobody handles (a client whose connection a drop ended) must not leave the vhost and databases behind either.
  process.on("uncaughtException", (err) => {
    log("❌", `uncaught: ${err.stack ?? err.message}`);
    if (stopping) return;
    stopping = true;
    void withTimeout(cleanup(), 20_000, () => undefined).finally(() => process.exit(1));
  });
  const results = new Results();
  const name = `${stamp()}${quick ? "-quick" : ""}`;
  const outDir = path.join(ROOT, "bench/results");
  try {
    if (needsAmqp) {
      vhost = createVhost();
      log("✅", `RabbitMQ vhost ${vhost.name}`);
    }
    if (cpuProf && onlyArg && only.has("pg")) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-bench-prof-"));
      try {
        const n = quick ? 200 : 2000;
        log("🔄", `profiling a PostgreSQL node (--cpu-prof, statements counted) during a burst of ${n}`);
        const md = await profilePgBurst({ amqpUrl: vhost!.url, burst: n, prefetch: PREFETCH, dir });
        fs.mkdirSync(outDir, { recursive: true });
        const out = path.join(outDir, `${name}-pg-cpu-profile.md`);
        fs.writeFileSync(out, md);
        console.log(`\n${md}`);
        log("✅", `wrote ${path.relative(ROOT, out)}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      return;
    }
    if (cpuProf) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-bench-prof-"));
      try {
        const n = quick ? 200 : 2000;
        log("🔄", `profiling the orchestrator (--cpu-prof) during a burst of ${n}`);
        const { file, run } = await profileBurst({ amqpUrl: vhost!.url, burst: n, prefetch: PREFETCH, dir });
        const md = profileMarkdown(summarizeProfile(file, path.join(ROOT, "dist")), `CPU profile of the orchestrator, end-to-end burst of ${n} (${run.jobsPerSecond.toFixed(1)} jobs/s under the profiler)`);
        fs.mkdirSync(outDir, { recursive: true });
        const out = path.join(outDir, `${name}-cpu-profile.md`);
        fs.writeFileSync(out, md);
        console.log(`\n${md}`);
        log("✅", `wrote ${path.relative(ROOT, out)}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      return;
    }
    const timed = async (section: string, fn: () => Promise<void>) => {
      const t0 = Date.now();
      await fn();
      log("✅", `${section} took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    };
    if (only.has("store")) await timed("store", () => runStore(plan.store, results));
    if (only.has("raw")) await timed("raw", () => runRawAmqp(vhost!.url, { ...plan.raw, prefetches: [...new Set([1, 10, PREFETCH, 100])].sort((a, b) => a - b), body: BenchBackend.message("bench-raw-0000-0000", "bench-noop") }, results));
    if (only.has("e2e"))
      await timed("e2e", () => runE2e({ amqpUrl: vhost!.url, burst: plan.burst, burstRuns: plan.burstRuns, sequential: plan.sequential, sequentialRuns: plan.sequentialRuns, intake: plan.intake, intakeRuns: plan.intakeRuns, prefetch: PREFETCH }, results));
    if (only.has("bullmq")) await timed("bullmq", () => runBullmq({ redisUrl: REDIS_URL, burst: plan.burst, burstRuns: plan.burstRuns, sequential: plan.sequential, sequentialRuns: plan.sequentialRuns }, results));
    if (only.has("scale") || only.has("aws"))
      await timed("scale", () => runScale({ amqpUrl: vhost!.url, ...plan.scale, counts: only.has("scale") ? plan.scale.counts : [], awsTasks: only.has("aws") ? plan.aws.tasks : 0, awsRuns: plan.aws.runs, awsWindowMs: quick ? 1500 : 3500, settleMs: quick ? 1000 : 2000 }, results));
    if (only.has("pg"))
      await timed("pg", () => runPostgres({ amqpUrl: vhost!.url, burst: plan.burst, burstRuns: plan.burstRuns, sequentialRuns: plan.sequentialRuns, prefetch: PREFETCH, ...plan.pg }, results));
  } finally {
    await cleanup();
  }
  machine.loadEnd = os.loadavg();
  results.goals = checkGoals(results, { prefetch: PREFETCH, quick });
  if (machine.loadStart[0] > machine.cores / 2 || machine.loadEnd[0] > machine.cores / 2) results.notes.push(`the machine was busy (load average above half its ${machine.cores} cores): other processes shared the CPU`);
  printReport(results, machine);
  const meta = {
    date: new Date().toISOString(),
    mode: quick ? "quick" : "full",
    commit: git("rev-parse", "--short", "HEAD"),
    branch: git("rev-parse", "--abbrev-ref", "HEAD"),
    durationS: Math.round((Date.now() - started) / 1000),
    plan,
    prefetch: PREFETCH,
    orchestratorEnv: "defaults (RECONCILE_INTERVAL_MS 1000, DISPATCH_INTERVAL_MS 1000), LOG_LEVEL warn, limits.global 50",
  };
  const files = writeReport(results, machine, meta, outDir, name);
  log("✅", `wrote ${path.relative(ROOT, files.json)} and ${path.relative(ROOT, files.md)} in ${meta.durationS} s`);
}

main().catch((err) => {
  log("❌", `bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
