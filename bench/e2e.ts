/**
 * Sections 2 and 3 against one orchestrator node with the no-op target:
 * - end to end: publish on execute.queue → legacy result on api.result, one job at a time
 *   and as a burst (jobs/s and latency percentiles);
 * - intake: a burst of messages → stored and acked (msgs/s), last, since its backlog is
 *   left queued (the node is thrown away afterwards).
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { BenchBackend } from "./backend";
import { metricValue } from "./metrics-text";
import { benchConfig, OrchestratorNode } from "./orchestrator-node";
import type { Results } from "./report";
import { latency, Latency, log, perSecond, since, until } from "./stats";

const TYPE = "bench-noop";

export interface E2eOptions {
  amqpUrl: string;
  burst: number;
  burstRuns: number;
  sequential: number;
  sequentialRuns: number;
  intake: number;
  intakeRuns: number;
  prefetch: number;
}

export interface BurstRun {
  jobsPerSecond: number;
  latency: Latency;
  failed: number;
}

let tagCounter = 0;
const runTag = () => `${randomBytes(3).toString("hex")}${tagCounter++}`;

/** Publishes `n` jobs as fast as the channel takes them; resolves when every legacy result is in. */
export async function burst(backend: BenchBackend, n: number, extra: Record<string, unknown> = {}): Promise<BurstRun> {
  const tag = runTag();
  const ids = Array.from({ length: n }, (_, i) => `bench-${tag}-${i}`);
  const timeoutMs = 60_000 + n * 100;
  const sent = new Map<string, number>();
  const t0 = performance.now();
  const waits: Array<Promise<{ at: number; result: { success: boolean } }>> = [];
  for (const id of ids) {
    waits.push(backend.result(id, timeoutMs));
    sent.set(id, performance.now());
    await backend.publish(BenchBackend.message(id, TYPE, extra));
  }
  await backend.confirmed();
  const got = await Promise.all(waits);
  const last = Math.max(...got.map((g) => g.at));
  return {
    jobsPerSecond: perSecond(n, last - t0),
    latency: latency(got.map((g, i) => g.at - sent.get(ids[i])!)),
    failed: got.filter((g) => !g.result.success).length,
  };
}

/** One job at a time: publish, wait for its result, next. Returns each latency (ms). */
export async function sequential(backend: BenchBackend, n: number): Promise<number[]> {
  const tag = runTag();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = `bench-${tag}-seq-${i}`;
    const wait = backend.result(id, 30_000);
    const t0 = performance.now();
    await backend.publish(BenchBackend.message(id, TYPE));
    const { at, result } = await wait;
    if (!result.success) throw new Error(`sequential job ${id} did not succeed: ${JSON.stringify(result)}`);
    out.push(at - t0);
  }
  return out;
}

/** How many execute.queue messages the node has acked (its AMQP counter, else its stored bench jobs). */
export async function acked(node: OrchestratorNode, type = TYPE): Promise<number> {
  const text = await node.metrics();
  return metricValue(text, "blacktree_amqp_messages_acked_total", { queue: "execute.queue" }) ?? metricValue(text, "blacktree_jobs", { type }) ?? 0;
}

/** Publishes `n` messages; msgs/s from the first publish until the node has acked all of them. */
async function intakeRun(node: OrchestratorNode, backend: BenchBackend, n: number): Promise<number> {
  const tag = runTag();
  const base = await acked(node);
  const bodies = Array.from({ length: n }, (_, i) => BenchBackend.message(`bench-${tag}-in-${i}`, TYPE));
  const t0 = performance.now();
  for (const b of bodies) await backend.publish(b);
  await backend.confirmed();
  // Watch the broker (cheap) until everything is delivered, then the node's counter for the last acks.
  await until(async () => (await backend.ready()) === 0, { timeoutMs: 120_000, intervalMs: 10, message: "execute.queue never drained" });
  await until(async () => (await acked(node)) - base >= n, { timeoutMs: 60_000, intervalMs: 10, message: `the node never acked ${n} messages` });
  return perSecond(n, since(t0));
}

export async function runE2e(opts: E2eOptions, results: Results): Promise<void> {
  log("🔄", `end to end: orchestrator with the no-op target (global limit 50, AMQP_PREFETCH ${opts.prefetch})`);
  const node = await OrchestratorNode.start({ amqpUrl: opts.amqpUrl, config: benchConfig(), env: { AMQP_PREFETCH: String(opts.prefetch) } });
  const backend = await BenchBackend.connect(opts.amqpUrl);
  try {
    await burst(backend, 20); // warm-up: JIT, prepared statements, channels
    const one: number[][] = [];
    for (let r = 0; r < opts.sequentialRuns; r++) one.push(await sequential(backend, opts.sequential));
    const seqLat = one.map((s) => latency(s));
    results.add("e2e.one.p50", "3 end to end", `one job at a time (${opts.sequential} sequential), p50`, "ms", seqLat.map((l) => l.p50));
    results.add("e2e.one.p99", "3 end to end", `one job at a time (${opts.sequential} sequential), p99`, "ms", seqLat.map((l) => l.p99));
    log("✅", `one at a time: p50 ${seqLat.map((l) => l.p50.toFixed(1)).join(" / ")} ms`);

    const runs: BurstRun[] = [];
    for (let r = 0; r < opts.burstRuns; r++) {
      const run = await burst(backend, opts.burst);
      runs.push(run);
      log(run.failed ? "⚠️" : "✅", `burst ${r + 1}/${opts.burstRuns}: ${opts.burst} jobs, ${run.jobsPerSecond.toFixed(1)} jobs/s, p99 ${run.latency.p99.toFixed(0)} ms${run.failed ? `, ${run.failed} not successful` : ""}`);
    }
    addBurst(results, "e2e", "3 end to end", opts.burst, runs);

  } finally {
    await backend.close();
    await node.stop();
  }
  // Each intake run on a fresh node: a run leaves a backlog that would slow the next one.
  const intake: number[] = [];
  for (let r = 0; r < opts.intakeRuns; r++) {
    const t0 = performance.now();
    const fresh = await OrchestratorNode.start({ amqpUrl: opts.amqpUrl, config: benchConfig(), env: { AMQP_PREFETCH: String(opts.prefetch) } });
    const started = since(t0);
    const client = await BenchBackend.connect(opts.amqpUrl);
    try {
      intake.push(await intakeRun(fresh, client, opts.intake));
    } finally {
      await client.close();
      await fresh.stop({ kill: true });
    }
    log("✅", `intake ${r + 1}/${opts.intakeRuns}: ${intake.at(-1)!.toFixed(0)} msgs/s (node started in ${started.toFixed(0)} ms)`);
  }
  results.add("intake.rate", "2 intake", `${opts.intake} messages stored + acked, prefetch ${opts.prefetch}`, "msgs/s", intake, "fresh node per run");
}

export function addBurst(results: Results, key: string, section: string, n: number, runs: BurstRun[]): void {
  results.add(`${key}.burst.rate`, section, `burst of ${n}, throughput`, "jobs/s", runs.map((r) => r.jobsPerSecond));
  for (const p of ["p50", "p90", "p99", "max"] as const) results.add(`${key}.burst.${p}`, section, `burst of ${n}, latency ${p}`, "ms", runs.map((r) => r.latency[p]));
  const failed = runs.reduce((a, r) => a + r.failed, 0);
  if (failed) results.notes.push(`${section}: ${failed} jobs of the bursts did not succeed`);
}

/** A burst on a node run with --cpu-prof; returns the .cpuprofile written when the node stopped. */
export async function profileBurst(opts: { amqpUrl: string; burst: number; prefetch: number; dir: string }): Promise<{ file: string; run: BurstRun }> {
  const node = await OrchestratorNode.start({ amqpUrl: opts.amqpUrl, config: benchConfig(), env: { AMQP_PREFETCH: String(opts.prefetch) }, cpuProfDir: opts.dir });
  const backend = await BenchBackend.connect(opts.amqpUrl);
  let run: BurstRun;
  try {
    await burst(backend, 20);
    run = await burst(backend, opts.burst);
  } finally {
    await backend.close();
    await node.stop();
  }
  const file = fs.readdirSync(opts.dir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error(`the node wrote no .cpuprofile into ${opts.dir}`);
  return { file: path.join(opts.dir, file), run };
}
