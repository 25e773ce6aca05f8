import type { PluginsConfig } from "../config/plugins-config";
import { describeError, errorType } from "../errors";
import type { NewJob } from "../jobs/model";
import type { PluginRegistry } from "../plugins/registry";
import type { TargetHandle } from "../plugins/sdk";
import type { Effect, EffectInput } from "../store/job-store";
import type { Canceller, CancelMatching } from "./canceller";
import type { EngineContext } from "./context";
import type { Reconciler } from "./reconciler";
import { TARGET_CALL_TIMEOUTS } from "./targets";
import { withTimeout, WorkPool } from "./work-pool";

const LEASE_MS = 5 * 60_000;
const BATCH = 50;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 60_000;
/** An effect still failing after this many tries is given up, loudly. */
const MAX_TRIES = 50;

/** A worker whose job moved on must be stopped; the attempt keeps its slot until it is. */
export function stopAttemptEffect(attempt: number, reason: string): EffectInput {
  return { kind: "stop_attempt", payload: { attempt, reason } };
}

function cancelMatchingEffect(params: CancelMatching): EffectInput {
  return { kind: "cancel_matching", payload: { ...params } };
}

/**
 * What accepting a job cancels, written with the job in one transaction (so a crash cannot
 * lose it, and a `stop` answers once stored): a `stop` ends its deployment's live jobs;
 * with `coalesce`, a newer queued job supersedes the queued ones of its type stored before it.
 */
export function submissionEffects(
  job: NewJob,
  registry: PluginRegistry,
  config: Pick<PluginsConfig, "taskTypes">,
  reach: { onlySubmittedBy?: string | null } = {},
): EffectInput[] {
  if (!job.deploymentId || job.state !== "queued") return [];
  const effects: EffectInput[] = [];
  // Who may be cancelled is recorded with the effect: a submitter's job reaches only that submitter's jobs.
  const scoped = reach.onlySubmittedBy ? { onlySubmittedBy: reach.onlySubmittedBy } : {};
  const scope = registry.taskType(job.type)?.def.cancelsOnSubmit?.({ id: job.id, type: job.type, deploymentId: job.deploymentId, attempt: 0, params: job.params });
  if (scope) effects.push(cancelMatchingEffect({ deploymentId: scope.deploymentId, exceptId: job.id, reason: `stopped by ${job.type} job ${job.id}`, by: `job:${job.id}`, ...scoped }));
  if (config.taskTypes[job.type]?.coalesce) {
    effects.push(cancelMatchingEffect({ deploymentId: job.deploymentId, type: job.type, states: ["queued"], storedBefore: job.id, exceptId: job.id, reason: `superseded by job ${job.id}`, by: `job:${job.id}`, ...scoped }));
  }
  return effects;
}

/** Not a failure: the effect waits on something under way (a launch in flight). */
class NotYet extends Error {
  constructor(readonly retryInMs: number) {
    super("not yet");
  }
}

/**
 * Carries out what decisions caused — follow-ups, a `stop`'s cancellations, stopping a
 * worker — from the effects the store wrote in the decision's own transaction. At least
 * once: every effect is idempotent (follow-ups by their job key, cancels and stops by state).
 */
export class Effects {
  private readonly pool: WorkPool;
  private passing = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly c: EngineContext,
    private readonly canceller: Canceller,
    private readonly reconciler: Reconciler,
    private readonly launchInFlight: (key: string) => boolean,
  ) {
    this.pool = new WorkPool(16, (key, err) => c.logger.error(`❌ effect ${key} failed: ${describeError(err).message}`));
  }

  kick(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = true;
    setImmediate(() => void this.pass());
  }

  async stop(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    return this.pool.idle(timeoutMs);
  }

  private async pass(): Promise<void> {
    try {
      do {
        this.again = false;
        const effects = await this.c.store.leaseEffects(this.c.now(), BATCH, LEASE_MS);
        for (const effect of effects) this.pool.run(`effect:${effect.id}`, () => this.run(effect));
        if (effects.length === BATCH) this.again = true;
      } while (this.again && !this.stopped);
    } catch (err) {
      this.c.logger.error(`❌ reading effects failed: ${describeError(err).message}`);
    } finally {
      this.passing = false;
    }
  }

  private async run(effect: Effect): Promise<void> {
    try {
      await this.handle(effect);
      await this.c.store.completeEffect(effect.id);
    } catch (err) {
      const now = this.c.now();
      if (err instanceof NotYet) {
        await this.c.store.failEffect(effect.id, "waiting", now + err.retryInMs, false);
        return;
      }
      const message = `${errorType(err)}: ${describeError(err).message}`;
      if (effect.tries + 1 >= MAX_TRIES) {
        this.c.logger.error(`❌ ${effect.kind} for job ${effect.jobId} given up after ${MAX_TRIES} tries: ${message}`);
        await this.c.store.completeEffect(effect.id);
        return;
      }
      const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** effect.tries);
      if (effect.tries === 0) this.c.logger.warn(`⚠️ ${effect.kind} for job ${effect.jobId} failed (${message}); 🔄 retrying`);
      await this.c.store.failEffect(effect.id, message, now + delay);
    }
  }

  private async handle(effect: Effect): Promise<void> {
    switch (effect.kind) {
      case "stop_attempt":
        return this.stopAttempt(effect.jobId, Number(effect.payload.attempt), String(effect.payload.reason ?? "stopped"));
      case "cancel_matching":
        await this.canceller.cancelMatching(effect.payload as unknown as CancelMatching);
        return;
      case "follow_ups":
        return this.followUps(effect.jobId, Number(effect.payload.attempt));
      default:
        throw Object.assign(new Error(`no handler for effect kind '${effect.kind}' on this node`), { type: "INTERNAL" });
    }
  }

  private async stopAttempt(jobId: string, n: number, reason: string): Promise<void> {
    const attempt = await this.c.store.getAttempt(jobId, n);
    if (!attempt || attempt.state !== "stopping") return;
    let handle = attempt.handle as TargetHandle | null;
    if (!handle) {
      // The launch may still return a handle: the launcher stops it then. Without one in
      // flight here, a launch lost in a crash may yet have started a worker: stop it by key.
      if (this.launchInFlight(attempt.key)) throw new NotYet(500);
      if (this.c.now() - attempt.launchedAt <= this.c.settings.relaunchAfterMs) throw new NotYet(Math.min(1000, this.c.settings.relaunchAfterMs));
      handle = { key: attempt.key };
    }
    await withTimeout(this.c.targets.stop(attempt.target, handle, reason), TARGET_CALL_TIMEOUTS.stop, `stop on '${attempt.target}'`);
    const log = await this.reconciler.collectLog(attempt);
    await this.c.store.updateAttempt(jobId, n, { state: "stopped", ...(log ? { log } : {}) }, { onlyIfState: ["stopping"] });
    this.c.logger.info(`✅ job ${jobId} attempt ${n}: worker stopped (${reason})`);
  }

  private async followUps(jobId: string, n: number): Promise<void> {
    const job = await this.c.store.getJob(jobId);
    const def = job && this.c.registry.taskType(job.type)?.def;
    if (!job || !def?.followUps || job.state !== "succeeded" || job.attempt !== n) return;
    const requests = def.followUps({ id: job.id, type: job.type, deploymentId: job.deploymentId, attempt: job.attempt, params: job.params }, job.result ?? {}, this.c.plugin);
    for (const [i, body] of requests.entries()) {
      try {
        const { job: child, created } = await this.c.submit(body, { parentId: job.id, idempotencyKey: `${job.id}.follow-up.${n}.${i}`, submittedBy: job.submittedBy, traceparent: job.traceContext });
        if (!created) continue;
        await this.c.store.updateAttempt(job.id, n, {}, { event: { kind: "job.follow_up", data: { jobId: child.id, type: child.type } } });
        this.c.logger.info(`✅ job ${job.id} created follow-up ${child.type} job ${child.id}`);
      } catch (err) {
        const type = errorType(err);
        if (type !== "VALIDATION_FAILED" && type !== "UNKNOWN_TASK_TYPE") throw err;
        // Refused for good: say so in the job's history rather than retrying forever.
        await this.c.store.updateAttempt(job.id, n, {}, { event: { kind: "job.follow_up_refused", data: { type: body.type, error: describeError(err).message } } });
        this.c.logger.error(`❌ follow-up of job ${job.id} refused: ${describeError(err).message}`);
      }
    }
  }
}
