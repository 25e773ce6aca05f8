import type { Attempt, Job, JobError, JobEvent, JobResult } from "../jobs/model";
import { iso } from "../jobs/model";
import { isFinal, isJobState } from "../jobs/states";

/** Bytes of the last attempt's log in a legacy result. */
export const RESULT_LOG_BYTES = 4 * 1024;

/** The backend's result shape, exactly these five keys (the backend contract, docs/architecture.md). */
export interface LegacyResult {
  deploymentId: string | null;
  imageUrl: string | null;
  success: boolean;
  logs: string;
  error: string | null;
}

export function isFinalEvent(e: JobEvent): boolean {
  return e.to !== null && isJobState(e.to) && isFinal(e.to);
}

/** What a final event recorded of its job (the store writes it in the event's transaction). */
interface FinalSnapshot {
  state: string;
  result: JobResult | null;
  error: JobError | null;
}

/**
 * The legacy result of a final event, from that event's own snapshot and its attempt's
 * log — never from the job's current row, which an operator's retry may have moved on.
 */
export function legacyResult(e: JobEvent, job: Pick<Job, "deploymentId">, attempt: Attempt | null): LegacyResult {
  const snapshot = (e.data.snapshot ?? {}) as Partial<FinalSnapshot>;
  const success = e.to === "succeeded";
  const imageUrl = snapshot.result?.imageUrl;
  const log = attempt?.log ?? "";
  return {
    deploymentId: job.deploymentId,
    imageUrl: typeof imageUrl === "string" ? imageUrl : null,
    success,
    logs: log.length > RESULT_LOG_BYTES ? log.slice(log.length - RESULT_LOG_BYTES) : log,
    error: success ? null : (snapshot.error?.message ?? null),
  };
}

/**
 * The rich event on `api.status` and Redis: the outbox row with the job's identity.
 * Event data holds no secrets: the token never leaves job_secrets.
 */
export function statusEvent(e: JobEvent, job: Pick<Job, "type" | "deploymentId"> | null) {
  return {
    seq: e.seq,
    jobId: e.jobId,
    type: job?.type ?? null,
    deploymentId: job?.deploymentId ?? null,
    kind: e.kind,
    from: e.from,
    to: e.to,
    attempt: e.attempt,
    at: iso(e.at),
    data: e.data,
  };
}
