import { describeError, isRetryable } from "../errors";
import { fallbackChain, fallbackKey } from "../jobs/fallback";
import type { Attempt, Job } from "../jobs/model";
import { endTransition } from "../jobs/outcomes";
import { jobMetrics } from "../metrics";
import type { LaunchRequest, TargetHandle } from "../plugins/sdk";
import type { EngineContext } from "./context";
import { TARGET_CALL_TIMEOUTS } from "./targets";
import { NO_TRACING } from "../tracing";
import { WorkPool } from "./work-pool";

/** Jobs claimed per store call; a pass claims again while a call fills up. */
const CLAIM_BATCH = 50;
const LAUNCHES_IN_FLIGHT = 64;

/**
 * Claims runnable jobs within the limits (atomically in the store, so several launchers
 * never claim one job twice) and launches each attempt on its target with the key
 * `<jobId>:<attempt>`: at most one launch in flight per attempt, fallback targets each
 * tried once, and a launch that returns for an attempt that was cancelled meanwhile stops
 * its worker at once.
 */
export class Launcher {
  private readonly pool: WorkPool;
  private claiming = false;
  private again = false;
  private stopped = false;
  /** When this node last relaunched a handle-less attempt, by key (no relaunch storms). */
  private readonly relaunchedAt = new Map<string, number>();

  constructor(
    private readonly c: EngineContext,
    private readonly onLaunched: (attempt: Attempt) => void,
  ) {
    this.pool = new WorkPool(LAUNCHES_IN_FLIGHT, (key, err) => c.logger.error(`❌ launch ${key} could not be recorded: ${describeError(err).message}`));
  }

  /** A launch of this attempt key is under way on this node. */
  inFlight(key: string): boolean {
    return this.pool.has(key);
  }

  /** Something changed that may free a slot or add a runnable job: claim soon. */
  wake(): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = true;
    setImmediate(() => void this.claimPass());
  }

  /** The safety net: claims, and relaunches attempts whose launch was lost (a crash mid-launch). */
  async sweep(): Promise<void> {
    this.wake();
    const now = this.c.now();
    for (const { job, attempt } of await this.c.store.activeAttempts()) {
      if (attempt.state !== "launching" || attempt.handle !== null || this.inFlight(attempt.key)) continue;
      const since = Math.max(attempt.launchedAt, this.relaunchedAt.get(attempt.key) ?? 0);
      if (now - since <= this.c.settings.relaunchAfterMs) continue;
      this.relaunchedAt.set(attempt.key, now);
      this.c.logger.warn(`⚠️ job ${job.id} attempt ${attempt.attempt} has no handle ${now - attempt.launchedAt} ms after its claim: launching it again with the same key`);
      this.start(job, attempt);
    }
    for (const key of this.relaunchedAt.keys()) if (now - this.relaunchedAt.get(key)! > 10 * this.c.settings.relaunchAfterMs) this.relaunchedAt.delete(key);
  }

  /** Stops claiming and waits (at most `timeoutMs`) for launches in flight to be recorded. */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    return this.pool.idle(timeoutMs);
  }

  private async claimPass(): Promise<void> {
    try {
      do {
        this.again = false;
        if (this.stopped) break;
        const claimStarted = Date.now();
        const claims = await this.c.store.claimJobs({ now: this.c.now(), limits: this.c.config.limits, max: CLAIM_BATCH });
        for (const { job, attempt } of claims) {
          jobMetrics.queueWait.observe({ type: job.type }, (attempt.launchedAt - job.createdAt) / 1000);
          this.tracing.claimed(job, attempt.attempt, claimStarted);
          this.start(job, attempt);
        }
        if (claims.length === CLAIM_BATCH) this.again = true;
      } while (this.again);
    } catch (err) {
      this.c.logger.error(`❌ claiming jobs failed: ${describeError(err).message}`);
    } finally {
      this.claiming = false;
    }
  }

  private start(job: Job, attempt: Attempt): void {
    this.pool.run(attempt.key, () => this.launch(job, attempt));
  }

  private get tracing() {
    return this.c.tracing ?? NO_TRACING;
  }

  private async launch(job: Job, first: Attempt): Promise<void> {
    const chain = fallbackChain(this.c.config.routing, job.target ?? first.target);
    let attempt = first;
    for (;;) {
      let handle: TargetHandle;
      // One span per target tried; the worker reports in its context (TRACEPARENT).
      const trace = this.tracing.launch(job, attempt.attempt, attempt.target);
      try {
        handle = await this.c.targets.launch(attempt.target, await this.request(job, attempt, trace.traceparent), TARGET_CALL_TIMEOUTS.launch);
        trace.end();
      } catch (err) {
        trace.end(err);
        const e = describeError(err);
        jobMetrics.launchErrors.inc({ target: attempt.target, type: e.type });
        this.c.logger.warn(`⚠️ launch of job ${job.id} attempt ${attempt.attempt} on '${attempt.target}' failed: ${e.type}: ${e.message}`);
        // A missing target service (not started yet, node gone) is worth retrying.
        const retryable = e.type === "SERVICE_NOT_FOUND" || e.type === "SERVICE_NOT_AVAILABLE" || isRetryable(err);
        const next = retryable ? chain[chain.indexOf(attempt.target) + 1] : undefined;
        if (next !== undefined && this.c.registry.target(next)) {
          const moved = await this.fallBack(job, attempt, next, `${e.type}: ${e.message}`);
          if (!moved) return;
          attempt = moved;
          continue;
        }
        await this.launchFailed(job, attempt, `${e.type}: ${e.message}`, retryable);
        return;
      }
      await this.launched(job, attempt, handle);
      return;
    }
  }

  private async launched(job: Job, attempt: Attempt, handle: TargetHandle): Promise<void> {
    const recorded = await this.c.store.updateAttempt(job.id, attempt.attempt, { handle }, { event: { kind: "attempt.launched", data: { target: attempt.target } } });
    if (!recorded || recorded.state !== "stopping") {
      if (recorded?.state === "launching" || recorded?.state === "running") this.onLaunched(recorded);
      return; // or it already ended: the target reported its worker gone before we heard back
    }
    // Cancelled (or timed out) while the launch was in flight: its worker must not run on.
    this.c.logger.info(`🔄 job ${job.id} attempt ${attempt.attempt} ended while launching: stopping its worker`);
    try {
      await this.c.targets.stop(attempt.target, handle, recorded?.reason ?? "the attempt ended while launching");
      await this.c.store.updateAttempt(job.id, attempt.attempt, { state: "stopped" }, { onlyIfState: ["stopping"] });
    } catch (err) {
      // The attempt stays `stopping`: its stop effect (or the reaper) tries again.
      this.c.logger.warn(`⚠️ could not stop job ${job.id} attempt ${attempt.attempt}: ${describeError(err).message}`);
    }
  }

  /** Moves the attempt to the next target of routing.fallback; null when it ended meanwhile. */
  private async fallBack(job: Job, attempt: Attempt, next: string, reason: string): Promise<Attempt | null> {
    const key = fallbackKey(job.id, attempt.attempt, next);
    const moved = await this.c.store.updateAttempt(job.id, attempt.attempt, { target: next, key }, { event: { kind: "attempt.fallback", data: { from: attempt.target, to: next, reason } }, onlyIfState: ["launching"] });
    if (!moved) {
      await this.c.store.updateAttempt(job.id, attempt.attempt, { state: "stopped" }, { onlyIfState: ["stopping"] });
      return null;
    }
    jobMetrics.launchFallbacks.inc({ from: attempt.target, to: next });
    this.c.logger.info(`🔄 job ${job.id} attempt ${attempt.attempt} falls back from '${attempt.target}' to '${next}'`);
    return moved;
  }

  private async launchFailed(job: Job, attempt: Attempt, reason: string, retryable: boolean): Promise<void> {
    const now = this.c.now();
    const current = await this.c.store.getJob(job.id);
    if (current && current.attempt === attempt.attempt && current.state === "launching") {
      const ended = await this.c.store.transition(job.id, endTransition(current, attempt, { outcome: "LAUNCH_FAILED", reason, retryable, attemptState: "exited" }, now));
      if (ended) return;
    }
    // Ended meanwhile (a cancel): nothing was launched, so nothing holds compute.
    await this.c.store.updateAttempt(job.id, attempt.attempt, { state: "stopped", endedAt: now }, { onlyIfState: ["stopping"] });
  }

  private async request(job: Job, attempt: Attempt, traceparent: string | null): Promise<LaunchRequest> {
    const taskType = this.c.registry.taskType(job.type);
    if (!taskType) throw Object.assign(new Error(`task type '${job.type}' is not loaded on this node`), { type: "LAUNCH_FAILED", retryable: true });
    const workload = taskType.def.toWorkload({ id: job.id, type: job.type, deploymentId: job.deploymentId, attempt: attempt.attempt, params: job.params }, this.c.plugin);
    // The store is asked only when the workload may fetch secrets (which of them the job holds).
    const secretNames = workload.secrets?.length ? Object.keys(await this.c.store.getSecrets(job.id)) : [];
    const secrets = (workload.secrets ?? []).filter((s) => secretNames.includes(s));
    return {
      jobId: job.id,
      attempt: attempt.attempt,
      key: attempt.key,
      workload: {
        ...workload,
        secrets,
        env: {
          ...workload.env,
          BLACKTREE_JOB_ID: job.id,
          BLACKTREE_ATTEMPT: String(attempt.attempt),
          BLACKTREE_JOB_TYPE: job.type,
          BLACKTREE_DEPLOYMENT_ID: job.deploymentId ?? "",
          BLACKTREE_CALLBACK_URL: `${this.c.settings.publicUrl}/api/worker`,
          // Bound to this launch's key: a fallback launch gets a new token, and the first one's stops working.
          BLACKTREE_CALLBACK_TOKEN: this.c.tokens.issue(job.id, attempt.attempt, attempt.key, attemptTokenTtl(job)),
          BLACKTREE_SECRETS: secrets.join(","),
          // W3C Trace Context for the worker's callbacks (the SDK's worker client sends it back).
          ...(traceparent ? { TRACEPARENT: traceparent } : {}),
        },
      },
      labels: { "blacktree.job": job.id, "blacktree.attempt": String(attempt.attempt), "blacktree.deployment": job.deploymentId ?? "", "blacktree.type": job.type },
    };
  }
}

/** A callback token lives as long as the attempt may: start + run timeouts, plus slack. */
export function attemptTokenTtl(job: Job): number {
  const { startTimeout, runTimeout, totalTimeout } = job.timeouts;
  const span = (startTimeout || 3_600_000) + (runTimeout || 24 * 3_600_000);
  return Math.min(totalTimeout || span, span) + 5 * 60_000;
}
