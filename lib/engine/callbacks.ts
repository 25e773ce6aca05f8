import { blacktreeError } from "../errors";
import type { Attempt, Job, JobResult } from "../jobs/model";
import type { EngineContext } from "./context";
import { tail } from "./reconciler";

export interface WorkerCall {
  jobId: string;
  attempt: number;
  /** The launch key the worker's token was issued for. */
  key: string;
}

/**
 * What a worker reports through the gateway with its scoped token. Only the job's current,
 * live attempt, launched with the token's key, may report; a stale attempt, or the first
 * launch of an attempt that fell back to another target, is told so (403) and changes nothing.
 */
export class WorkerCallbacks {
  constructor(
    private readonly c: EngineContext,
    private readonly onResult: (attempt: Attempt) => void,
  ) {}

  async started(call: WorkerCall): Promise<void> {
    const { job, attempt } = await this.live(call);
    const now = this.c.now();
    if (job.state === "launching") {
      await this.c.store.transition(job.id, { from: "launching", to: "running", expect: { attempt: attempt.attempt }, attempt: { state: "running", startedAt: now, heartbeatAt: now }, event: { data: { via: "worker" } } });
    } else if (attempt.startedAt === null) {
      await this.c.store.updateAttempt(job.id, attempt.attempt, { startedAt: now, heartbeatAt: now }, { onlyIfState: ["launching", "running"] });
    }
  }

  async heartbeat(call: WorkerCall): Promise<void> {
    const { job, attempt } = await this.live(call);
    await this.c.store.updateAttempt(job.id, attempt.attempt, { heartbeatAt: this.c.now() }, { onlyIfState: ["launching", "running"] });
  }

  async result(call: WorkerCall & { result: JobResult }): Promise<void> {
    const { job, attempt } = await this.live(call);
    const r = call.result;
    const updated = await this.c.store.updateAttempt(job.id, attempt.attempt, { result: r, heartbeatAt: this.c.now() }, {
      onlyIfState: ["launching", "running"],
      event: { kind: "attempt.result", data: { success: r.success ?? null, imageUrl: r.imageUrl ?? null } },
    });
    if (updated) this.onResult(updated);
  }

  async log(call: WorkerCall & { lines: string[] }): Promise<void> {
    const { job, attempt } = await this.live(call);
    // Counted as stored: a posted line with newlines is several lines of the log.
    const lines = call.lines.flatMap((l) => l.split(/\r?\n/));
    const text = [attempt.log, ...lines].filter((l) => l !== null).join("\n");
    await this.c.store.updateAttempt(job.id, attempt.attempt, { log: tail(text), logLines: attempt.logLines + lines.length, heartbeatAt: this.c.now() }, { onlyIfState: ["launching", "running"] });
  }

  /**
   * Once per launch key: the worker's only way to its job's secrets (they never travel in
   * launch parameters). The store checks and marks the fetch in one transaction, so two
   * concurrent fetches cannot both succeed.
   */
  async secrets(call: WorkerCall): Promise<Record<string, string>> {
    const { job, attempt } = await this.live(call);
    // Asked first: a target that cannot answer now (ECR down) fails the fetch before it is spent, so the worker may retry.
    const fromTarget = await this.targetSecrets(job, attempt);
    const secrets = await this.c.store.takeSecrets(job.id, attempt.attempt, call.key);
    if (secrets === null) throw blacktreeError("FORBIDDEN", "This launch already fetched its secrets, or is no longer live");
    return { ...fromTarget, ...secrets };
  }

  /**
   * A named worker run from a target's worker image also gets what its target adds (the
   * registry's credentials, an ECR token fetched now): straight to the worker, never stored.
   */
  private async targetSecrets(job: Job, attempt: Attempt): Promise<Record<string, string>> {
    const taskType = this.c.registry.taskType(job.type);
    const workload = taskType?.def.toWorkload({ id: job.id, type: job.type, deploymentId: job.deploymentId, attempt: attempt.attempt, params: job.params }, this.c.plugin);
    if (!workload?.worker || workload.image) return {};
    return this.c.targets.workerSecrets(attempt.target, attempt.key);
  }

  private async live(call: WorkerCall): Promise<{ job: Job; attempt: Attempt }> {
    // By the launch key, job and attempt in one read: a token of an earlier launch of this
    // attempt (before a fallback moved it to another key) finds nothing.
    const active = await this.c.store.attemptByKey(call.key);
    const live = active && active.job.id === call.jobId && active.job.attempt === call.attempt && active.attempt.attempt === call.attempt && (active.job.state === "launching" || active.job.state === "running");
    if (!active || !live || (active.attempt.state !== "launching" && active.attempt.state !== "running")) throw blacktreeError("FORBIDDEN", "This attempt is no longer live, or the token belongs to an earlier launch of it");
    return active;
  }
}
