import type { Context, ServiceSchema } from "moleculer";
import { describeError, isRetryable } from "../lib/errors";
import type { Attempt, Job } from "../lib/jobs/model";
import { fallbackKey, nextFallbackTarget } from "../lib/jobs/fallback";
import { endAttempt } from "../lib/jobs/outcomes";
import type { LaunchRequest, TargetHandle } from "../lib/plugins/sdk";
import { asPluginLogger, Runtime } from "../lib/runtime";
import { jobMetrics } from "../lib/metrics";
import { targetServiceName } from "./target-host.service";

/** Jobs claimed per pass; a pass repeats while it fills up. */
const CLAIM_BATCH = 20;
/** How long a launch call may take before it counts as failed. */
const LAUNCH_TIMEOUT_MS = 60_000;

/**
 * Claims runnable jobs within the concurrency limits (atomically in the store, so several
 * dispatchers never claim one job twice) and launches each on its target with the
 * idempotency key `<jobId>:<attempt>`.
 */
export function dispatcherService(rt: Runtime): ServiceSchema {
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;

  return {
    name: "dispatcher",
    events: {
      // Any committed change may free a slot or add a runnable job.
      "outbox.written"(this: any) {
        this.wake();
      },
    },
    actions: {
      /** Re-runs the launch of an attempt whose launch never completed (e.g. after a crash). */
      relaunch: {
        visibility: "public",
        async handler(this: any, ctx: Context<{ jobId: string; attempt: number }>) {
          const job = await rt.store.getJob(ctx.params.jobId);
          const attempt = job && (await rt.store.getAttempt(job.id, ctx.params.attempt));
          if (!job || !attempt || job.attempt !== attempt.attempt || job.state !== "launching") return { relaunched: false };
          await this.launch(job, attempt);
          return { relaunched: true };
        },
      },
    },
    methods: {
      wake(this: any) {
        if (running) again = true;
        else setImmediate(() => this.pass());
      },
      async pass(this: any) {
        if (running) return;
        running = true;
        try {
          do {
            again = false;
            const claims = await rt.store.claimJobs({ now: Date.now(), limits: rt.config.limits, max: CLAIM_BATCH });
            for (const { job, attempt } of claims) {
              jobMetrics.queueWait.observe({ type: job.type }, (attempt.launchedAt - job.createdAt) / 1000);
              // Launches run concurrently; each records its own failure.
              this.launch(job, attempt).catch((err: unknown) => this.logger.error(`❌ launch of job ${job.id} could not be recorded: ${describeError(err).message}`));
            }
            if (claims.length === CLAIM_BATCH) again = true;
          } while (again);
        } catch (err) {
          this.logger.error(`❌ dispatch pass failed: ${describeError(err).message}`);
        } finally {
          running = false;
        }
      },
      async launch(this: any, job: Job, attempt: Attempt) {
        const taskType = rt.registry.taskType(job.type);
        try {
          if (!taskType) throw Object.assign(new Error(`task type '${job.type}' is not loaded on this node`), { type: "LAUNCH_FAILED", retryable: true });
          const secretNames = Object.keys(await rt.store.getSecrets(job.id));
          const taskJob = { id: job.id, type: job.type, deploymentId: job.deploymentId, attempt: attempt.attempt, params: job.params };
          const workload = taskType.def.toWorkload(taskJob, rt.pluginContext(asPluginLogger(this.logger)));
          const ttl = attemptTokenTtl(job);
          const req: LaunchRequest = {
            jobId: job.id,
            attempt: attempt.attempt,
            key: attempt.key,
            workload: {
              ...workload,
              secrets: (workload.secrets ?? []).filter((s) => secretNames.includes(s)),
              env: {
                ...workload.env,
                BLACKTREE_JOB_ID: job.id,
                BLACKTREE_ATTEMPT: String(attempt.attempt),
                BLACKTREE_JOB_TYPE: job.type,
                BLACKTREE_DEPLOYMENT_ID: job.deploymentId ?? "",
                BLACKTREE_CALLBACK_URL: `${rt.env.publicUrl}/api/worker`,
                BLACKTREE_CALLBACK_TOKEN: rt.callbackTokens.issue(job.id, attempt.attempt, ttl),
                BLACKTREE_SECRETS: (workload.secrets ?? []).filter((s) => secretNames.includes(s)).join(","),
              },
            },
            labels: { "blacktree.job": job.id, "blacktree.attempt": String(attempt.attempt), "blacktree.deployment": job.deploymentId ?? "", "blacktree.type": job.type },
          };
          this.logger.info(`🔄 launching job ${job.id} attempt ${attempt.attempt} on '${attempt.target}'`);
          const handle: TargetHandle = await this.broker.call(`${targetServiceName(attempt.target)}.launch`, req, { timeout: LAUNCH_TIMEOUT_MS, retries: 0 });
          await rt.store.updateAttempt(job.id, attempt.attempt, { handle }, { event: { kind: "attempt.launched", data: { target: attempt.target } }, onlyIfState: ["launching"] });
          this.broker.broadcast("outbox.written", { jobId: job.id });
        } catch (err) {
          const e = describeError(err);
          jobMetrics.launchErrors.inc({ target: attempt.target, type: e.type });
          this.logger.warn(`⚠️ launch of job ${job.id} attempt ${attempt.attempt} on '${attempt.target}' failed: ${e.type}: ${e.message}`);
          // A missing target service (not started yet, node gone) is worth retrying.
          const retryable = e.type === "SERVICE_NOT_FOUND" || e.type === "SERVICE_NOT_AVAILABLE" || isRetryable(err);
          if (retryable && (await this.fallBack(job, attempt, `${e.type}: ${e.message}`))) return;
          const ended = await endAttempt(rt.store, { ...job, state: "launching" }, { outcome: "LAUNCH_FAILED", reason: `${e.type}: ${e.message}`, retryable, attemptState: "exited" });
          if (ended) this.broker.broadcast("outbox.written", { jobId: job.id });
        }
      },
      /** Moves the attempt to the next target of routing.fallback and launches it there; false when there is none. */
      async fallBack(this: any, job: Job, attempt: Attempt, reason: string): Promise<boolean> {
        const next = nextFallbackTarget(rt.config.routing, job.target, attempt.target);
        if (!next || !rt.registry.target(next)) return false;
        const key = fallbackKey(job.id, attempt.attempt, next);
        const event = { kind: "attempt.fallback", data: { from: attempt.target, to: next, reason } };
        const moved: Attempt | null = await rt.store.updateAttempt(job.id, attempt.attempt, { target: next, key }, { event, onlyIfState: ["launching"] });
        if (!moved) return true; // cancelled meanwhile: nothing more to launch
        jobMetrics.launchFallbacks.inc({ from: attempt.target, to: next });
        this.logger.info(`🔄 job ${job.id} attempt ${attempt.attempt} falls back from '${attempt.target}' to '${next}'`);
        await this.launch(job, moved);
        return true;
      },
    },
    started(this: any) {
      timer = setInterval(() => this.wake(), rt.env.dispatchIntervalMs);
      this.wake();
    },
    stopped() {
      clearInterval(timer);
    },
  };
}

/** A callback token lives as long as the attempt may: start + run timeouts, plus slack. */
export function attemptTokenTtl(job: Job): number {
  const { startTimeout, runTimeout, totalTimeout } = job.timeouts;
  const span = (startTimeout || 3_600_000) + (runTimeout || 24 * 3_600_000);
  return Math.min(totalTimeout || span, span) + 5 * 60_000;
}
