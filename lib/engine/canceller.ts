import { blacktreeError, errorType } from "../errors";
import type { Job } from "../jobs/model";
import { isFinal } from "../jobs/states";
import type { EngineContext } from "./context";
import { stopAttemptEffect } from "./effects";

/** A deployment's live jobs to cancel: a `stop`'s reach, or a newer job superseding older queued ones. */
export interface CancelMatching {
  deploymentId: string;
  exceptId: string;
  type?: string;
  states?: string[];
  /** Only jobs stored before this job (a newer job superseding older ones). */
  storedBefore?: string;
  /** Only jobs of this submitter: the reach of a submitter's job (absent: every job, an operator's reach). */
  onlySubmittedBy?: string;
  reason: string;
  by: string;
}

/**
 * Cancel, operator retry and cancel-by-deployment. A cancel is one compare-and-set that
 * also writes the stop of its worker as an effect: the attempt keeps its slot (state
 * `stopping`) until the target confirms, so a `stop` job never runs beside the worker it ends.
 */
export class Canceller {
  constructor(private readonly c: EngineContext) {}

  /** `by`: who asked (an API key's name, `job:<id>` for a job's own reach). A job that already ended is JOB_FINAL. */
  async cancel(id: string, reason: string, by: string): Promise<Job> {
    for (;;) {
      const job = await this.c.store.getJob(id);
      if (!job) throw blacktreeError("JOB_NOT_FOUND", `No job '${id}'`);
      if (isFinal(job.state)) throw blacktreeError("JOB_FINAL", `Job '${id}' already ended: it is ${job.state}`, { state: job.state });
      const holdsCompute = job.state === "launching" || job.state === "running";
      const cancelled = await this.c.store.transition(id, {
        from: job.state,
        to: "cancelled",
        expect: { version: job.version },
        patch: { error: { type: "CANCELLED", message: reason } },
        attempt: holdsCompute ? { state: "stopping", endedAt: this.c.now(), outcome: "CANCELLED", reason } : undefined,
        event: { data: { reason, by } },
        effects: holdsCompute ? [stopAttemptEffect(job.attempt, `cancelled: ${reason}`)] : [],
      });
      if (!cancelled) continue; // the job moved meanwhile: look again
      this.c.logger.info(`✅ job ${id} cancelled by ${by}: ${reason}`);
      return cancelled;
    }
  }

  /** Operator action: a failed, timed-out or cancelled job runs again as a new attempt. */
  async retry(id: string, by: string): Promise<Job> {
    const job = await this.c.store.getJob(id);
    if (!job) throw blacktreeError("JOB_NOT_FOUND", `No job '${id}'`);
    const deadline = job.timeouts.totalTimeout ? this.c.now() + job.timeouts.totalTimeout : null;
    const queued = await this.c.store.transition(job.id, {
      from: ["failed", "timed_out", "cancelled"],
      to: "queued",
      expect: { version: job.version },
      patch: { runAfter: null, error: null, result: null, deadline },
      event: { kind: "job.retried", data: { by, previousState: job.state } },
    });
    if (!queued) {
      const now = await this.c.store.getJob(id);
      throw blacktreeError("INVALID_TRANSITION", `Job '${job.id}' is ${now?.state ?? job.state}: only failed, timed_out or cancelled jobs can be retried`);
    }
    this.c.logger.info(`🔄 job ${job.id} queued again by ${by} (was ${job.state})`);
    return queued;
  }

  async cancelMatching(m: CancelMatching): Promise<string[]> {
    const cancelled: string[] = [];
    // Storage order, not timestamps: jobs stored in one commit share a millisecond.
    const storedAt = async (id: string) => (await this.c.store.getEvents(id))[0]?.seq ?? Infinity;
    const bound = m.storedBefore === undefined ? null : await storedAt(m.storedBefore);
    let cursor: string | undefined;
    do {
      const page = await this.c.store.listJobs({ deploymentId: m.deploymentId, type: m.type, submittedBy: m.onlySubmittedBy, limit: 500, cursor });
      for (const job of page.items) {
        if (job.id === m.exceptId || isFinal(job.state) || (m.states && !m.states.includes(job.state))) continue;
        if (m.onlySubmittedBy !== undefined && job.submittedBy !== m.onlySubmittedBy) continue; // outside the submitter's reach
        if (bound !== null && (await storedAt(job.id)) >= bound) continue;
        try {
          if ((await this.cancel(job.id, m.reason, m.by)).state === "cancelled") cancelled.push(job.id);
        } catch (err) {
          if (errorType(err) !== "JOB_FINAL") throw err; // it ended meanwhile: nothing to cancel
        }
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return cancelled;
  }
}
