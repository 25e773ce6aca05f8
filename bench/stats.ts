/** Small numeric helpers shared by the bench sections. */
import fs from "node:fs";

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (!samples.length) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function median(samples: readonly number[]): number {
  if (!samples.length) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Latency summary of one run, in ms. */
export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function latency(samples: readonly number[]): Latency {
  return { p50: percentile(samples, 50), p90: percentile(samples, 90), p99: percentile(samples, 99), max: Math.max(...samples) };
}

/** Milliseconds since `t0` (a `performance.now()` reading). */
export const since = (t0: number) => performance.now() - t0;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `promise`, or `onTimeout()` after `ms`; the timer never outlives the race (it would hold the process open). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => T | Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => Promise.resolve().then(onTimeout).then(resolve, reject), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `fn` every `intervalMs` until it returns a truthy value; throws `message` after `timeoutMs`. */
export async function until<T>(fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, opts: { timeoutMs: number; intervalMs?: number; message: string }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`${opts.message} (after ${opts.timeoutMs} ms)`);
    await sleep(opts.intervalMs ?? 50);
  }
}

/** `rate` items per second for `n` items in `ms`. */
export const perSecond = (n: number, ms: number) => (n * 1000) / ms;

export function log(icon: "✅" | "⚠️" | "❌" | "🔄", message: string): void {
  process.stdout.write(`${icon} ${message}\n`);
}

/** utime + stime of a process, ms (from /proc; 0 when it is gone). */
export function processCpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(rest[11]) + Number(rest[12]);
    return (ticks * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;
