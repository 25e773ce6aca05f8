import { poll } from "../../lib/testkit/poll";

export interface WaitOptions {
  /** Give up after this many ms (default 10 s). */
  timeout?: number;
  /** Poll every this many ms (default 25). */
  interval?: number;
  /** Says what was awaited, in the error thrown at the deadline. */
  message?: string;
}

/** Polls `fn` until it returns a truthy value: the testkit's `poll` with test defaults (errors mean "not yet", a failed `expect` fails at once). */
export function waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  return poll(fn, { timeout: opts.timeout ?? 10_000, interval: opts.interval ?? 25, message: opts.message ?? "condition not met" });
}
