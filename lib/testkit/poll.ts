/** Polls `fn` until it returns a truthy value (errors count as "not yet"), or throws at the deadline. */
export async function poll<T>(fn: () => Promise<T> | T, opts: { timeout: number; interval?: number; message: string }): Promise<NonNullable<T>> {
  const end = Date.now() + opts.timeout;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= end) throw new Error(`${opts.message}: not within ${opts.timeout} ms${last instanceof Error ? ` (last error: ${last.message})` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, opts.interval ?? 50));
  }
}
