/**
 * Section 4: the same burst and one-at-a-time figures on BullMQ (real Redis), no-op
 * processor at concurrency 50 in a worker process of its own; latency from `add` to the
 * `completed` event seen through QueueEvents. One queue prefix per run, obliterated after.
 */
import { ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Queue, QueueEvents } from "bullmq";
import { addBurst, BurstRun } from "./e2e";
import { CONCURRENCY, ROOT, track } from "./orchestrator-node";
import type { Results } from "./report";
import { latency, log, perSecond, withTimeout } from "./stats";

const TSX = pathToFileURL(require.resolve("tsx")).href;

export interface BullOptions {
  redisUrl: string;
  burst: number;
  burstRuns: number;
  sequential: number;
  sequentialRuns: number;
}

class BullBench {
  private readonly done = new Map<string, (at: number) => void>();
  private seq = 0;

  constructor(
    readonly queue: Queue,
    readonly events: QueueEvents,
  ) {
    events.on("completed", ({ jobId }) => {
      const at = performance.now();
      this.done.get(jobId)?.(at);
      this.done.delete(jobId);
    });
  }

  completed(jobId: string, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`BullMQ job ${jobId} not completed within ${timeoutMs} ms`)), timeoutMs);
      this.done.set(jobId, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }

  async burst(n: number): Promise<BurstRun> {
    const tag = this.seq++;
    const ids = Array.from({ length: n }, (_, i) => `b${tag}-${i}`);
    const sent: number[] = [];
    const waits: Array<Promise<number>> = [];
    const adds: Array<Promise<unknown>> = [];
    const t0 = performance.now();
    for (const id of ids) {
      waits.push(this.completed(id, 60_000 + n * 100));
      sent.push(performance.now());
      adds.push(this.queue.add("noop", { deploymentId: id }, { jobId: id }));
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
      await this.queue.add("noop", { deploymentId: id }, { jobId: id });
      out.push((await wait) - t0);
    }
    return out;
  }
}

function startWorker(redisUrl: string, queue: string, prefix: string): Promise<ChildProcess> {
  const child = track(spawn(process.execPath, ["--import", TSX, path.join(ROOT, "bench/bullmq-worker.ts"), redisUrl, queue, prefix, String(CONCURRENCY)], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the BullMQ worker did not start in 30 s")), 30_000);
    child.stdout!.on("data", (c: Buffer) => {
      if (c.toString().includes("ready")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code) => reject(new Error(`the BullMQ worker exited with ${code}`)));
  });
}

export async function runBullmq(opts: BullOptions, results: Results): Promise<void> {
  const prefix = `blacktree-bench-${process.pid}-${Date.now()}`;
  const name = "noop";
  log("🔄", `BullMQ: worker concurrency ${CONCURRENCY}, prefix ${prefix}`);
  const connection = { url: opts.redisUrl };
  const queue = new Queue(name, { connection, prefix });
  const events = new QueueEvents(name, { connection, prefix });
  let worker: ChildProcess | null = null;
  try {
    await queue.waitUntilReady();
    await events.waitUntilReady();
    worker = await startWorker(opts.redisUrl, name, prefix);
    const bench = new BullBench(queue, events);
    await bench.burst(Math.min(opts.burst, 2000)); // warm-up (JIT, connections): cheap here, so a whole burst
    const one = [];
    for (let r = 0; r < opts.sequentialRuns; r++) one.push(latency(await bench.sequential(opts.sequential)));
    results.add("bullmq.one.p50", "4 BullMQ", `one job at a time (${opts.sequential} sequential), p50`, "ms", one.map((l) => l.p50));
    results.add("bullmq.one.p99", "4 BullMQ", `one job at a time (${opts.sequential} sequential), p99`, "ms", one.map((l) => l.p99));
    const runs: BurstRun[] = [];
    for (let r = 0; r < opts.burstRuns; r++) runs.push(await bench.burst(opts.burst));
    addBurst(results, "bullmq", "4 BullMQ", opts.burst, runs);
    log("✅", `BullMQ: ${runs.map((r) => r.jobsPerSecond.toFixed(0)).join(" / ")} jobs/s, one-job p50 ${one.map((l) => l.p50.toFixed(1)).join(" / ")} ms`);
  } finally {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once("exit", r));
      worker.kill("SIGTERM");
      await withTimeout(exited, 5000, () => undefined);
      if (worker.exitCode === null) worker.kill("SIGKILL");
    }
    await queue.obliterate({ force: true }).catch((err) => log("⚠️", `could not obliterate BullMQ queue ${prefix}:${name}: ${(err as Error).message}`));
    await events.close();
    await queue.close();
  }
}
