import { PLUGIN_ERROR_CODES } from "@blacktree/sdk";
import type { ErrorData, FieldError } from "@blacktree/sdk";
import { Errors } from "moleculer";

export type { ErrorData, FieldError };

/**
 * The one registry of coded errors. Errors cross nodes as plain objects, so callers
 * check `err.type` (and `err.retryable`), never `instanceof`.
 */
export const ErrorCodes = {
  // The codes plugins throw (validation, launches, workers, config) are the SDK's, defined there once.
  ...PLUGIN_ERROR_CODES,
  BAD_REQUEST: { status: 400, retryable: false },
  UNKNOWN_TASK_TYPE: { status: 422, retryable: false },
  UNAUTHORIZED: { status: 401, retryable: false },
  FORBIDDEN: { status: 403, retryable: false },
  NOT_FOUND: { status: 404, retryable: false },
  JOB_NOT_FOUND: { status: 404, retryable: false },
  INVALID_TRANSITION: { status: 409, retryable: false },
  /** The job already ended (succeeded, failed, timed out, cancelled, rejected): nothing to cancel. */
  JOB_FINAL: { status: 409, retryable: false },
  JOB_KEY_CONFLICT: { status: 409, retryable: false },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false },
  RATE_LIMITED: { status: 429, retryable: true },
  PLUGIN_NOT_FOUND: { status: 500, retryable: false },
  PLUGIN_INVALID: { status: 500, retryable: false },
  PLUGIN_API_MISMATCH: { status: 500, retryable: false },
  PLUGIN_DUPLICATE: { status: 500, retryable: false },
  /** A plugin's module throws when required, or is TypeScript this process cannot load. */
  PLUGIN_LOAD_FAILED: { status: 500, retryable: false },
  /** A plugin's `dependencies` name a plugin that is not loaded, or one outside the range. */
  PLUGIN_DEPENDENCY_UNMET: { status: 500, retryable: false },
  STORE_UNAVAILABLE: { status: 503, retryable: true },
  AMQP_UNAVAILABLE: { status: 503, retryable: true },
  PUBLISH_FAILED: { status: 502, retryable: true },
  SINK_UNAVAILABLE: { status: 503, retryable: true },
  DEAD_LETTER_NOT_FOUND: { status: 404, retryable: false },
  /** The dead letter kept no body (it could not be parsed, so it was not kept): there is nothing to publish again. */
  NOTHING_TO_REPLAY: { status: 409, retryable: false },
} as const;

export type ErrorType = keyof typeof ErrorCodes;

/** A MoleculerError with a registered `type`: its HTTP status and retry flag come from the registry. */
export class BlacktreeError extends Errors.MoleculerError {
  declare type: ErrorType;
  declare data: ErrorData | undefined;

  constructor(type: ErrorType, message: string, data?: ErrorData, opts: { retryable?: boolean } = {}) {
    super(message, ErrorCodes[type].status, type, data);
    this.name = "BlacktreeError";
    this.retryable = opts.retryable ?? ErrorCodes[type].retryable;
  }
}

export function blacktreeError(type: ErrorType, message: string, data?: ErrorData, opts?: { retryable?: boolean }) {
  return new BlacktreeError(type, message, data, opts);
}

/** Works on local errors and on plain objects that crossed the transporter. */
export function errorType(err: unknown): string | undefined {
  return err && typeof err === "object" && typeof (err as { type?: unknown }).type === "string"
    ? (err as { type: string }).type
    : undefined;
}

export function isRetryable(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as { retryable?: unknown; type?: unknown };
  if (typeof e.retryable === "boolean") return e.retryable;
  return typeof e.type === "string" && e.type in ErrorCodes ? ErrorCodes[e.type as ErrorType].retryable : false;
}

/** A short, loggable description: never the error's data (it may echo input). */
export function describeError(err: unknown): { type: string; message: string; retryable: boolean } {
  const message = err instanceof Error ? err.message : typeof err === "object" && err && "message" in err ? String((err as { message: unknown }).message) : String(err);
  return { type: errorType(err) ?? "INTERNAL", message, retryable: isRetryable(err) };
}
