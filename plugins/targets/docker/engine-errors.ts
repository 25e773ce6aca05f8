import { blacktreeError } from "@blacktree/sdk";

/** What dockerode throws: an HTTP status from the engine, or a socket error code. */
interface EngineError {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string } | null;
}

const UNREACHABLE = new Set(["ECONNREFUSED", "ENOENT", "EACCES", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTFOUND"]);

export const statusOf = (err: unknown): number | undefined => (err as EngineError | null)?.statusCode;

function engineMessage(err: unknown): string {
  const e = err as EngineError;
  return (e?.json?.message ?? e?.message ?? String(err)).trim();
}

/**
 * Maps an engine failure to a coded error: an unreachable engine or a 5xx is worth
 * retrying; a missing image or a request the engine calls invalid (4xx) is not.
 */
export function launchError(key: string, err: unknown, image: string): Error {
  const e = err as EngineError;
  const status = e?.statusCode;
  if (e?.code && UNREACHABLE.has(e.code)) {
    return blacktreeError("LAUNCH_FAILED", `cannot launch ${key}: the docker engine is unreachable (${e.code})`, undefined, { retryable: true });
  }
  if (status === 404) {
    return blacktreeError("LAUNCH_FAILED", `cannot launch ${key}: image '${image}' is not on the docker engine (${engineMessage(err)})`, undefined, { retryable: false });
  }
  if (status !== undefined && status >= 400 && status < 500) {
    return blacktreeError("LAUNCH_FAILED", `cannot launch ${key}: the docker engine refused the container: ${engineMessage(err)}`, undefined, { retryable: false });
  }
  return blacktreeError("LAUNCH_FAILED", `cannot launch ${key}: ${engineMessage(err)}`, undefined, { retryable: true });
}

/** For inspect, list, stop: the lifecycle treats these as "target unreachable now", never as proof of loss. */
export function engineError(what: string, err: unknown): Error {
  return blacktreeError("TARGET_NOT_FOUND", `docker engine: ${what} failed: ${engineMessage(err)}`, undefined, { retryable: true });
}
