import type { JobEvent, JobSource } from "../jobs/model";
import type { JobStore } from "../store/job-store";

/** What never changes about a job: all a status sink needs besides the event itself. */
export interface JobIdentity {
  type: string;
  deploymentId: string | null;
  source: JobSource;
  createdAt: number;
  /** The job's trace (lib/tracing.ts), or null. */
  traceContext: string | null;
}

/**
 * The sinks' shared memory of job identities: learnt from each job's creation event as it
 * passes (so the usual flow reads no job row at all), read from the store otherwise (a
 * drain that starts mid-history), bounded (least recently used go first).
 */
export class JobIdentities {
  private readonly known = new Map<string, JobIdentity>();

  constructor(
    private readonly store: JobStore,
    private readonly max = 10_000,
  ) {}

  async of(e: JobEvent): Promise<JobIdentity | null> {
    const seen = this.known.get(e.jobId);
    if (seen) {
      this.known.delete(e.jobId); // most recently used goes last
      this.known.set(e.jobId, seen);
      return seen;
    }
    const identity = fromCreation(e) ?? (await this.fromStore(e.jobId));
    if (identity) this.remember(e.jobId, identity);
    return identity;
  }

  private async fromStore(jobId: string): Promise<JobIdentity | null> {
    const job = await this.store.getJob(jobId);
    return job && { type: job.type, deploymentId: job.deploymentId, source: job.source, createdAt: job.createdAt, traceContext: job.traceContext };
  }

  private remember(jobId: string, identity: JobIdentity): void {
    this.known.set(jobId, identity);
    if (this.known.size > this.max) this.known.delete(this.known.keys().next().value as string);
  }
}

/** A creation event carries the job's identity (the store writes type, deploymentId and source into it). */
function fromCreation(e: JobEvent): JobIdentity | null {
  if (e.from !== null || (e.kind !== "job.created" && e.kind !== "job.rejected") || typeof e.data.type !== "string") return null;
  return { type: e.data.type, deploymentId: (e.data.deploymentId as string | null) ?? null, source: e.data.source as JobSource, createdAt: e.at, traceContext: typeof e.data.traceContext === "string" ? e.data.traceContext : null };
}
