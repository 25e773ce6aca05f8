/**
 * A failed assertion, from Jest's `expect` (it carries `matcherResult`; its class is
 * JestAssertionError) or from `node:assert` (name `AssertionError`, code `ERR_ASSERTION`).
 */
export function isAssertionError(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as { matcherResult?: unknown; name?: unknown; code?: unknown };
  return e.matcherResult !== undefined || e.name === "AssertionError" || e.name === "JestAssertionError" || e.code === "ERR_ASSERTION";
}

/**
 * Polls `fn` until it returns a truthy value, or throws at the deadline.
 *
 * A falsy value or a thrown error means "not yet" (e.g. ECONNREFUSED while a node starts),
 * and the deadline error names the last one — except a failed assertion (Jest's `expect`,
 * `node:assert`): that is a verdict, not a state to wait out, so it fails the poll at once
 * with the assertion's own error. Return a falsy value to say "not yet"; assert only what
 * must hold on every try.
 */
export async function poll<T>(fn: () => Promise<T> | T, opts: { timeout: number; interval?: number; message: string }): Promise<NonNullable<T>> {
  const end = Date.now() + opts.timeout;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      if (isAssertionError(err)) throw err;
      last = err;
    }
    if (Date.now() >= end) throw new Error(`${opts.message}: not within ${opts.timeout} ms${last instanceof Error ? ` (last error: ${last.message})` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, opts.interval ?? 50));
  }
}
