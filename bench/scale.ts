/**
 * Section 5, scale:
 * - N queued jobs that cannot start (type `bench-held`, byType limit 1, the one slot held
 *   by a job on the never-ending `bench-forever` target), seeded straight into the node's
 *   SQLite file through the store's `createJob` before the node starts: the node's VmRSS,
 *   the lifecycle clock pass (`blacktree_clock_tick_seconds`) and the event-loop lag p99.
 * - 1,000 running Fargate tasks on the AWS emulator: one reconcile pass (the mean clock
 *   pass while all 1,000 are running, i.e. 10 DescribeTasks + 1,000 checks), and from
 *   outside, 1,000 tasks told to exit → 1,000 legacy results.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS } from "../lib/jobs/policy";
import type { NewJob } from "../lib/jobs/model";
import { SecretBox } from "../lib/secrets/secret-box";
import { createStore } from "../lib/store";
import { startAwsEmulator } from "../test/support/aws-emulator";
import { BenchBackend } from "./backend";
import { acked } from "./e2e";
import { histogram, histogramDelta, histogramQuantile, metricValue } from "./metrics-text";
import { benchConfig, OrchestratorNode } from "./orchestrator-node";
import type { Results } from "./report";
import { log, median, sleep, until } from "./stats";

const TICK = "blacktree_clock_tick_seconds";
const LAG_P99 = "blacktree_nodejs_eventloop_lag_p99_seconds";

export interface ScaleOptions {
  amqpUrl: string;
  counts: number[];
  /** Node starts per count, and measuring windows per start. */
  starts: number;
  windows: number;
  windowMs: number;
  awsTasks: number;
  awsRuns: number;
  /** How long the reconcile passes of the running tasks are watched. */
  awsWindowMs: number;
  /** Wait after start-up before the first window (the start-up pass and its garbage). */
  settleMs: number;
}

function heldJob(i: number): NewJob {
  const deploymentId = `bench-held-${i}`;
  return {
    id: `job_bench_held_${i}`, type: "bench-held", state: "queued", deploymentId, priority: 0, target: "bench-forever", concurrencyKey: null,
    params: { deploymentId }, secrets: { token: "ghp_benchSeededToken0123456789abcdef" },
    timeouts: DEFAULT_TIMEOUTS, retry: DEFAULT_RETRY, source: "amqp", parentId: null, error: null, deadline: null, runAfter: null,
    submittedBy: null,
  };
}

/** Seeds `n` queued jobs into a data dir the node will open (same secrets key); returns ms. */
async function seed(dataDir: string, n: number, secretsKey: Buffer): Promise<number> {
  const t0 = performance.now();
  const store = createStore({ dataDir, secrets: new SecretBox(secretsKey) });
  await store.migrate();
  const now = Date.now() - n;
  for (let i = 0; i < n; i++) await store.createJob(heldJob(i), now + i);
  await store.close();
  return performance.now() - t0;
}

/** Publishes `n` held jobs on execute.queue and waits until the node has acked them all. */
async function seedOverAmqp(node: OrchestratorNode, amqpUrl: string, n: number): Promise<void> {
  const t0 = performance.now();
  const backend = await BenchBackend.connect(amqpUrl);
  try {
    const base = await acked(node, "bench-held");
    for (let i = 0; i < n; i++) await backend.publish(BenchBackend.message(`bench-held-${i}`, "bench-held"));
    await backend.confirmed();
    await until(async () => (await acked(node, "bench-held")) - base >= n, { timeoutMs: 60_000 + n * 20, intervalMs: 1000, message: `the node never acked ${n} seeded messages` });
  } finally {
    await backend.close();
  }
  log("✅", `seeded ${n} queued jobs over AMQP in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

interface Window {
  rssMb: number;
  peakMb: number;
  tickP50: number;
  tickP99: number;
  tickMean: number;
  ticks: number;
  lagP99: number;
}

/** Watches the node for `ms`: tick histogram between two scrapes, VmRSS sampled every 250 ms (median), lag p99 of the last scrape. */
async function observe(node: OrchestratorNode, ms: number): Promise<Window> {
  const before = histogram(await node.metrics(), TICK);
  const rss: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    rss.push(node.rssMb());
    await sleep(Math.min(250, Math.max(0, end - Date.now())));
  }
  const text = await node.metrics();
  const after = histogram(text, TICK);
  const status = fs.readFileSync(`/proc/${node.pid}/status`, "utf8");
  const peakMb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
  const tick = after ? histogramDelta(before, after) : null;
  return {
    rssMb: median(rss),
    peakMb,
    tickP50: tick ? histogramQuantile(tick, 0.5) * 1000 : NaN,
    tickP99: tick ? histogramQuantile(tick, 0.99) * 1000 : NaN,
    tickMean: tick && tick.count > 0 ? (tick.sum / tick.count) * 1000 : NaN,
    ticks: tick?.count ?? 0,
    lagP99: (metricValue(text, LAG_P99) ?? NaN) * 1000,
  };
}

async function queuedScale(opts: ScaleOptions, n: number, results: Results): Promise<void> {
  const label = n >= 1000 ? `${n / 1000}k` : String(n);
  const secretsKey = randomBytes(32);
  const template = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-bench-seed-"));
  const windows: Window[] = [];
  try {
    // Straight into the store file when its API allows; over AMQP (slow: once, one node) when it does not.
    let seeded = true;
    try {
      if (process.env.BENCH_SEED === "amqp") throw new Error("BENCH_SEED=amqp");
      const seedMs = await seed(template, n, secretsKey);
      log("✅", `seeded ${n} queued jobs in ${(seedMs / 1000).toFixed(1)} s (${((seedMs / n) * 1000).toFixed(0)} µs/job, store createJob)`);
    } catch (err) {
      seeded = false;
      for (const f of fs.readdirSync(template)) fs.rmSync(path.join(template, f), { recursive: true, force: true });
      log("⚠️", `seeding through the store failed (${(err as Error).message}): seeding over AMQP instead`);
      results.notes.push(`${label} queued: seeded over AMQP (the store's createJob could not be used), one node start`);
    }
    const starts = seeded ? opts.starts : 1;
    const perStart = seeded ? opts.windows : Math.max(3, opts.windows);
    for (let s = 0; s < starts; s++) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-bench-scale-"));
      try {
        for (const f of fs.readdirSync(template)) fs.copyFileSync(path.join(template, f), path.join(dataDir, f));
        const node = await OrchestratorNode.start({ amqpUrl: opts.amqpUrl, config: benchConfig(), dataDir, env: { BLACKTREE_SECRETS_KEY: secretsKey.toString("base64") } });
        try {
          if (!seeded) await seedOverAmqp(node, opts.amqpUrl, n);
          // The held slot is taken, the start-up pass is over: then watch.
          await until(async () => (metricValue(await node.metrics(), "blacktree_jobs", { state: "running", type: "bench-held" }) ?? 0) >= 1, { timeoutMs: 60_000, intervalMs: 200, message: "the held job never started" });
          await sleep(opts.settleMs);
          for (let w = 0; w < perStart; w++) {
            const win = await observe(node, opts.windowMs);
            windows.push(win);
            log("✅", `${label} queued: VmRSS ${win.rssMb.toFixed(0)} MB (peak ${win.peakMb.toFixed(0)}), tick p99 ${win.tickP99.toFixed(1)} ms (mean ${win.tickMean.toFixed(1)}, ${win.ticks} ticks), lag p99 ${win.lagP99.toFixed(1)} ms`);
          }
        } finally {
          await node.stop();
        }
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(template, { recursive: true, force: true });
  }
  const section = "5 scale";
  const noTick = windows.every((w) => !Number.isFinite(w.tickP99));
  if (noTick) results.notes.push(`${TICK} is not exported by this node: tick figures missing`);
  results.add(`scale.${label}.rss`, section, `${label} queued: VmRSS`, "MB", windows.map((w) => w.rssMb), "median of 250 ms samples over the window");
  results.add(`scale.${label}.peak`, section, `${label} queued: VmHWM (peak RSS)`, "MB", windows.map((w) => w.peakMb));
  results.add(`scale.${label}.tick.p50`, section, `${label} queued: clock tick p50`, "ms", windows.map((w) => w.tickP50));
  results.add(`scale.${label}.tick.p99`, section, `${label} queued: clock tick p99`, "ms", windows.map((w) => w.tickP99), `≈ ${median(windows.map((w) => w.ticks)).toFixed(0)} ticks per ${opts.windowMs / 1000} s window`);
  results.add(`scale.${label}.lag`, section, `${label} queued: event-loop lag p99`, "ms", windows.map((w) => w.lagP99));
}

async function fargateScale(opts: ScaleOptions, results: Results): Promise<void> {
  const n = opts.awsTasks;
  const emu = await startAwsEmulator({ ecs: { phaseMs: 20 } });
  const config = benchConfig((c) => {
    c.plugins.push({
      use: "./plugins/targets/fargate",
      config: { cluster: "bench", taskDefinition: "worker:1", containerName: "worker", subnets: ["subnet-1"], endpoint: emu.endpoint, pollMs: 50, maxAttempts: 3, runTaskPerSecond: 1000 },
    });
    c.routing.byType["bench-emulated"] = "fargate";
    c.limits = { global: 2 * n };
  });
  const env = {
    AWS_ACCESS_KEY_ID: "AKIAEMULATOR0000TEST",
    AWS_SECRET_ACCESS_KEY: "emulator-secret-never-in-a-workload",
    AWS_REGION: "us-east-1",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    // Orphan reaping (ListTasks) stays out of the passes measured here.
    REAP_INTERVAL_MS: "3600000",
  };
  const pass: number[] = [];
  const describes: number[] = [];
  const exitToDone: number[] = [];
  const launch: number[] = [];
  let node: OrchestratorNode | null = null;
  let backend: BenchBackend | null = null;
  try {
    node = await OrchestratorNode.start({ amqpUrl: opts.amqpUrl, config, env });
    backend = await BenchBackend.connect(opts.amqpUrl);
    for (let r = 0; r < opts.awsRuns; r++) {
      const ids = Array.from({ length: n }, (_, i) => `bench-aws-${r}-${i}-${process.pid}`);
      const results_ = ids.map((id) => backend!.result(id, 600_000));
      const t0 = performance.now();
      for (const id of ids) await backend.publish(BenchBackend.message(id, "bench-emulated", { runMs: 600_000 }));
      await backend.confirmed();
      await until(async () => (metricValue(await node!.metrics(), "blacktree_jobs", { state: "running", type: "bench-emulated" }) ?? 0) >= n, { timeoutMs: 300_000, intervalMs: 250, message: `${n} Fargate tasks never all running` });
      launch.push(performance.now() - t0);
      await sleep(1200); // the pass that saw the last ones start is over
      const d0 = emu.count("DescribeTasks");
      const before = histogram(await node.metrics(), TICK);
      await sleep(opts.awsWindowMs);
      const after = histogram(await node.metrics(), TICK);
      const ticks = after ? histogramDelta(before, after) : null;
      if (ticks && ticks.count > 0) {
        pass.push((ticks.sum / ticks.count) * 1000);
        describes.push((emu.count("DescribeTasks") - d0) / ticks.count);
      }
      // Every task exits 0 now; the next passes see them STOPPED.
      const t1 = performance.now();
      emu.clock.advance(700_000);
      const got = await Promise.all(results_);
      exitToDone.push(Math.max(...got.map((g) => g.at)) - t1);
      const failed = got.filter((g) => !g.result.success).length;
      if (failed) results.notes.push(`fargate run ${r + 1}: ${failed} of ${n} jobs did not succeed`);
      log("✅", `fargate ${r + 1}/${opts.awsRuns}: ${n} running after ${(launch.at(-1)! / 1000).toFixed(1)} s; pass ${pass.at(-1)?.toFixed(0) ?? "—"} ms (${describes.at(-1)?.toFixed(1) ?? "—"} DescribeTasks); exit → ${n} results ${exitToDone.at(-1)!.toFixed(0)} ms`);
    }
  } finally {
    await backend?.close();
    await node?.stop();
    await emu.stop();
  }
  const section = "5 scale";
  if (!pass.length) results.notes.push(`${TICK} is not exported by this node: the Fargate reconcile pass was not timed`);
  results.add("aws.pass", section, `${n} running Fargate tasks: one reconcile pass`, "ms", pass, describes.length ? `mean clock pass; ${median(describes).toFixed(1)} DescribeTasks per pass` : undefined);
  results.add("aws.exit", section, `${n} tasks exit → ${n} legacy results`, "ms", exitToDone, "from outside: emulator clock advanced, then results on api.result");
  results.add("aws.launch", section, `${n} jobs published → ${n} tasks running`, "ms", launch);
}

export async function runScale(opts: ScaleOptions, results: Results): Promise<void> {
  for (const n of opts.counts) {
    log("🔄", `scale: ${n} queued jobs that cannot start (${opts.starts} node start(s) × ${opts.windows} window(s) of ${opts.windowMs / 1000} s)`);
    await queuedScale(opts, n, results);
  }
  if (opts.awsTasks > 0) {
    log("🔄", `scale: ${opts.awsTasks} running Fargate tasks on the AWS emulator (${opts.awsRuns} run(s))`);
    await fargateScale(opts, results);
  }
}
