/** What the SDK v3 clients throw: a named service exception, or a Node network error. */
interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $fault?: "client" | "server";
  $retryable?: { throttling?: boolean };
  $metadata?: { httpStatusCode?: number };
}

const THROTTLING = new Set(["ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException", "RequestThrottled", "RequestThrottledException"]);
const NETWORK = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "ECONNABORTED", "EHOSTUNREACH"]);

export const errorName = (err: unknown): string => (err as SdkError | null)?.name ?? "Error";

export function isThrottling(err: unknown): boolean {
  const e = err as SdkError | null;
  return THROTTLING.has(e?.name ?? "") || e?.$retryable?.throttling === true;
}

/** Worth asking again with the same token: throttling, a server fault, or the connection failing. */
export function isTransient(err: unknown): boolean {
  const e = err as SdkError | null;
  if (isThrottling(err)) return true;
  if (e?.code && NETWORK.has(e.code)) return true;
  if (e?.name === "TimeoutError" || /socket hang up|ECONNRESET/i.test(e?.message ?? "")) return true;
  const status = e?.$metadata?.httpStatusCode;
  return e?.$fault === "server" || (status !== undefined && status >= 500);
}

/** A short description for logs and job errors: the exception name and message, never request data. */
export function awsMessage(err: unknown): string {
  const e = err as SdkError | null;
  return `${errorName(err)}: ${(e?.message ?? String(err)).trim()}`;
}
