import type { Attempt, Job, JobEvent } from "../jobs/model";
import { iso } from "../jobs/model";
import { isFinal, isJobState } from "../jobs/states";

/** Bytes of the last attempt's log in a legacy result. */
export const RESULT_LOG_BYTES = 4 * 1024;

/** The backend's result shape, exactly these five keys (DESIGN.md §2). */
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

export function legacyResult(job: Job, attempt: Attempt | null): LegacyResult {
  const log = attempt?.log ?? "";
  const imageUrl = job.result?.imageUrl;
  return {
    deploymentId: job.deploymentId,
    imageUrl: typeof imageUrl === "string" ? imageUrl : null,
    success: job.state === "succeeded",
    logs: log.length > RESULT_LOG_BYTES ? log.slice(log.length - RESULT_LOG_BYTES) : log,
    error: job.state === "succeeded" ? null : (job.error?.message ?? null),
  };
}

/**
 * The rich event on `api.status` and Redis: the outbox row with the job's identity.
 * Event data holds no secrets: the token never leaves job_secrets.
 */
export function statusEvent(e: JobEvent, job: Job | null) {
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
