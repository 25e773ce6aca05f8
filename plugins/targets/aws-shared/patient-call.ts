import { isTransient } from "./aws-errors";

export interface PatienceOptions {
  /** Give up (and let the caller decide) after this long. */
  deadlineMs: number;
  /** First pause; doubles up to maxDelayMs, with full jitter. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Which errors to ask again after (default: transient ones). */
  retryIf?(err: unknown): boolean;
  /** Called before each pause (for a ⚠️ log). */
  onRetry?(err: unknown, attempt: number): void;
}

/**
 * Runs an idempotent call until it answers or fails for good. The SDK already retries a
 * few times; this outer loop absorbs longer throttling storms and dropped connections so
 * that a throttled launch is late, not failed. Only transient errors are retried.
 */
export async function patientCall<T>(call: () => Promise<T>, opts: PatienceOptions): Promise<T> {
  const end = Date.now() + opts.deadlineMs;
  const base = opts.baseDelayMs ?? 200;
  const max = opts.maxDelayMs ?? 5_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const delay = Math.random() * Math.min(max, base * 2 ** (attempt - 1));
      if (!(opts.retryIf ?? isTransient)(err) || Date.now() + delay >= end) throw err;
      opts.onRetry?.(err, attempt);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
