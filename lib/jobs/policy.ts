import { blacktreeError, FieldError } from "../errors";

/** Timeouts (ms, 0 = off) and the retry policy are public types of the plugin SDK: one definition. */
import type { FailureReason as SdkFailureReason, Jitter, RetryPolicy, Timeouts } from "@blacktree/sdk";
export type { Jitter, RetryPolicy, Timeouts };

/** Outcomes of a failed attempt, each of which a policy may retry. */
export const FAILURE_REASONS = ["LAUNCH_FAILED", "WORKER_LOST", "TIMED_OUT", "EXIT_NONZERO"] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number] & SdkFailureReason;

// `equal` jitter (half fixed, half random) is the default: it still spreads a herd of
// retries, and unlike full jitter each delay is at least half the nominal one, so with a
// coefficient of 2 the delays of one job never shrink.

export const DEFAULT_TIMEOUTS: Timeouts = {
  queueTimeout: 0,
  startTimeout: 5 * 60_000,
  runTimeout: 60 * 60_000,
  heartbeatTimeout: 0,
  totalTimeout: 0,
};

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 1,
  initialDelay: 1_000,
  backoffCoefficient: 2,
  maxDelay: 60_000,
  jitter: "equal",
  retryOn: ["LAUNCH_FAILED", "WORKER_LOST"],
};

const TIMEOUT_KEYS = Object.keys(DEFAULT_TIMEOUTS) as (keyof Timeouts)[];

function nonNegativeInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}

/**
 * Layers timeouts: built-in defaults < task type < config < job. A job may shorten a
 * timeout but never exceed `max` (0 in `max` means no ceiling).
 */
export function compileTimeouts(
  layers: Array<Partial<Timeouts> | undefined>,
  requested: Partial<Timeouts> | undefined,
  max: Partial<Timeouts> = {},
): Timeouts {
  const out = { ...DEFAULT_TIMEOUTS };
  for (const layer of layers) Object.assign(out, stripUndefined(layer));
  const errors: FieldError[] = [];
  for (const key of TIMEOUT_KEYS) {
    const v = requested?.[key];
    if (v === undefined) continue;
    if (!nonNegativeInt(v)) {
      errors.push({ field: `timeouts.${key}`, message: "must be a whole number of milliseconds, 0 or more" });
      continue;
    }
    const ceiling = max[key];
    if (ceiling && (v === 0 || v > ceiling)) {
      errors.push({ field: `timeouts.${key}`, message: `may not exceed ${ceiling} ms (the configured maximum)`, expected: ceiling, actual: v });
      continue;
    }
    out[key] = v;
  }
  if (errors.length) throw blacktreeError("VALIDATION_FAILED", "Invalid timeouts", { fields: errors });
  return out;
}

/** Builds a retry policy and refuses nonsense with the offending field named. */
export function compileRetryPolicy(
  layers: Array<Partial<RetryPolicy> | undefined>,
  requested?: Partial<RetryPolicy>,
  maxAttemptsCeiling = 10,
): RetryPolicy {
  const out: RetryPolicy = { ...DEFAULT_RETRY };
  for (const layer of layers) Object.assign(out, stripUndefined(layer));
  Object.assign(out, stripUndefined(requested));
  const errors: FieldError[] = [];
  const field = (name: keyof RetryPolicy, message: string) => errors.push({ field: `retry.${name}`, message });
  if (!Number.isInteger(out.maxAttempts) || out.maxAttempts < 1) field("maxAttempts", "must be a whole number, 1 or more");
  else if (out.maxAttempts > maxAttemptsCeiling) field("maxAttempts", `may not exceed ${maxAttemptsCeiling}`);
  if (!nonNegativeInt(out.initialDelay)) field("initialDelay", "must be a whole number of milliseconds, 0 or more");
  if (typeof out.backoffCoefficient !== "number" || !(out.backoffCoefficient >= 1)) field("backoffCoefficient", "must be a number, 1 or more");
  if (!nonNegativeInt(out.maxDelay)) field("maxDelay", "must be a whole number of milliseconds, 0 or more");
  if (!["full", "equal", "none"].includes(out.jitter)) field("jitter", "must be one of full, equal, none");
  if (!Array.isArray(out.retryOn) || out.retryOn.some((r) => !(FAILURE_REASONS as readonly string[]).includes(r)))
    field("retryOn", `must list only ${FAILURE_REASONS.join(", ")}`);
  if (errors.length) throw blacktreeError("VALIDATION_FAILED", "Invalid retry policy", { fields: errors });
  return out;
}

/** Delay before attempt `nextAttempt` (2 for the first retry). */
export function backoffDelay(policy: RetryPolicy, nextAttempt: number, random: () => number = Math.random): number {
  const nominal = Math.min(policy.maxDelay, policy.initialDelay * Math.pow(policy.backoffCoefficient, Math.max(0, nextAttempt - 2)));
  switch (policy.jitter) {
    case "none":
      return Math.round(nominal);
    case "full":
      return Math.round(random() * nominal);
    case "equal":
      return Math.round(nominal / 2 + random() * (nominal / 2));
  }
}

export function shouldRetry(policy: RetryPolicy, reason: FailureReason, attempt: number, retryable = true): boolean {
  return retryable && attempt < policy.maxAttempts && policy.retryOn.includes(reason);
}

function stripUndefined<T extends object>(o: T | undefined): Partial<T> {
  if (!o) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
