/**
 * Coded errors a plugin throws. They cross nodes as plain objects, so the orchestrator
 * reads `type` and `retryable` (and `code`, the HTTP status), never `instanceof`. No
 * Moleculer here: the orchestrator's own registry (lib/errors.ts) holds the same entries
 * for these types, and a test keeps them equal.
 */
export const PLUGIN_ERROR_CODES = {
  /** A job's field is wrong (from `check()`); name the field in `data.fields`. */
  VALIDATION_FAILED: { status: 422, retryable: false },
  /** A launch did not happen; `retryable` says whether another try (or a fallback target) may work. */
  LAUNCH_FAILED: { status: 502, retryable: true },
  /** The worker is gone without an exit code. */
  WORKER_LOST: { status: 502, retryable: true },
  /** Something a check depends on (DNS, an API) cannot answer now: try again later. */
  DEPENDENCY_UNAVAILABLE: { status: 503, retryable: true },
  /** A target cannot work with its config (found at `init`). */
  TARGET_CONFIG_INVALID: { status: 500, retryable: false },
  /** A target (or something it needs, such as a worker node) is not there now. */
  TARGET_NOT_FOUND: { status: 503, retryable: true },
  CONFIG_INVALID: { status: 500, retryable: false },
  INTERNAL: { status: 500, retryable: false },
} as const;

export type PluginErrorType = keyof typeof PLUGIN_ERROR_CODES;

export interface FieldError {
  field: string;
  message: string;
  type?: string;
  expected?: unknown;
  actual?: unknown;
}

export interface ErrorData {
  fields?: FieldError[];
  plugin?: string;
  [key: string]: unknown;
}

/** What `blacktreeError` makes: an Error with the fields the orchestrator reads. */
export class PluginError extends Error {
  readonly type: PluginErrorType;
  /** The HTTP status the gateway answers with, when the error reaches a client. */
  readonly code: number;
  retryable: boolean;
  readonly data: ErrorData | undefined;

  constructor(type: PluginErrorType, message: string, data?: ErrorData, opts: { retryable?: boolean } = {}) {
    super(message);
    this.name = "BlacktreeError";
    this.type = type;
    this.code = PLUGIN_ERROR_CODES[type].status;
    this.retryable = opts.retryable ?? PLUGIN_ERROR_CODES[type].retryable;
    this.data = data;
  }
}

export function blacktreeError(type: PluginErrorType, message: string, data?: ErrorData, opts?: { retryable?: boolean }): PluginError {
  return new PluginError(type, message, data, opts);
}

/** Works on local errors and on plain objects that crossed the transporter. */
export function errorType(err: unknown): string | undefined {
  return err && typeof err === "object" && typeof (err as { type?: unknown }).type === "string" ? (err as { type: string }).type : undefined;
}

export function isRetryable(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as { retryable?: unknown; type?: unknown };
  if (typeof e.retryable === "boolean") return e.retryable;
  return typeof e.type === "string" && e.type in PLUGIN_ERROR_CODES ? PLUGIN_ERROR_CODES[e.type as PluginErrorType].retryable : false;
}

/** Throws VALIDATION_FAILED for one field: what a task type's `check()` does with a bad value. */
export function fieldError(field: string, message: string, actual?: unknown): never {
  throw blacktreeError("VALIDATION_FAILED", `${field} ${message}`, { fields: [{ field, message, ...(actual === undefined ? {} : { actual }) }] });
}
