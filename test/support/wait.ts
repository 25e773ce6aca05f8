export interface WaitOptions {
  /** Give up after this many ms (default 10 s). */
  timeout?: number;
  /** Poll every this many ms (default 25). */
  interval?: number;
  /** Says what was awaited, in the error thrown at the deadline. */
  message?: string;
}

/**
 * Polls `fn` until it returns a truthy value and returns that value. Errors thrown by
 * `fn` count as "not yet"; the last one is quoted if the deadline passes.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeout = opts.timeout ?? 10_000;
  const interval = opts.interval ?? 25;
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`${opts.message ?? "condition not met"} within ${timeout} ms${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
