import type { Context, ServiceSchema } from "moleculer";
import { blacktreeError, describeError } from "../lib/errors";
import type { Attempt, Job, JobResult } from "../lib/jobs/model";
import { jobView } from "../lib/jobs/model";
import { AttemptEnd, endAttempt } from "../lib/jobs/outcomes";
import { isFinal } from "../lib/jobs/states";
import type { TargetHandle, TargetStatus } from "../lib/plugins/sdk";
import { jobMetrics } from "../lib/metrics";
import { asPluginLogger, Runtime } from "../lib/runtime";
import type { ActiveAttempt } from "../lib/store/job-store";
import { targetServiceName } from "./target-host.service";

/** Bytes of an attempt's log kept in the store when it ends. */
const STORED_LOG_BYTES = 64 * 1024;
/** Handles per inspect call. */
const INSPECT_BATCH = 100;

interface WorkerCall {
  jobId: string;
  attempt: number;
}

/**
 * The clock: reconciles running attempts with their targets, fires timeouts, moves
 * retrying jobs back to the queue when their backoff elapses, cancels, and takes worker
 * callbacks. Every decision is a compare-and-set in the store, so a cancel racing a
 * completion ends in exactly one final state; after a restart it adopts what is in flight.
 */
export function lifecycleService(rt: Runtime): ServiceSchema {
  let timer: NodeJS.Timeout | undefined;
  let ticking = false;
  let lastReap = 0;
  const changed = (broker: any, jobId: string) => broker.broadcast("outbox.written", { jobId });

  return {
    name: "lifecycle",
    actions: {
      cancel: {
        visibility: "public",
        async handler(this: any, ctx: Context<{ id: string; reason?: string; by?: string }>) {
          return jobView(await this.cancelJob(ctx.params.id, ctx.params.reason ?? "cancelled on request", ctx.params.by ?? "api"));
        },
      },
      /** Operator action: a failed, timed-out or cancelled job runs again as a new attempt. */
      retry: {
        visibility: "public",
        async handler(this: any, ctx: Context<{ id: string; by?: string }>) {
          const job = await rt.store.getJob(ctx.params.id);
          if (!job) throw blacktreeError("JOB_NOT_FOUND", `No job '${ctx.params.id}'`);
          const by = ctx.params.by ?? "api";
          const deadline = job.timeouts.totalTimeout ? Date.now() + job.timeouts.totalTimeout : null;
          const queued = await rt.store.transition(job.id, {
            from: ["failed", "timed_out", "cancelled"],
            to: "queued",
            patch: { runAfter: null, error: null, result: null, deadline },
            event: { kind: "job.retried", data: { by, previousState: job.state } },
          });
          if (!queued) throw blacktreeError("INVALID_TRANSITION", `Job '${job.id}' is ${job.state}: only failed, timed_out or cancelled jobs can be retried`);
          this.logger.info(`🔄 job ${job.id} queued again by ${by} (was ${job.state})`);
          changed(this.broker, job.id);
          return jobView(queued);
        },
      },
      /** Cancels the live jobs of a deployment (a `stop`, or a newer build superseding queued ones). */
      cancelMatching: {
        visibility: "public",
        async handler(this: any, ctx: Context<{ deploymentId: string; exceptId: string; type?: string; states?: string[]; createdBefore?: number; reason: string; by: string }>) {
          const { deploymentId, exceptId, type, states, createdBefore, reason, by } = ctx.params;
          const cancelled: string[] = [];
          let cursor: string | undefined;
          do {
            const page = await rt.store.listJobs({ deploymentId, type, limit: 500, cursor });
            for (const job of page.items) {
              if (job.id === exceptId || isFinal(job.state) || (states && !states.includes(job.state))) continue;
              if (createdBefore !== undefined && job.createdAt >= createdBefore) continue;
              const done = await this.cancelJob(job.id, reason, by);
              if (done.state === "cancelled") cancelled.push(job.id);
            }
            cursor = page.nextCursor ?? undefined;
          } while (cursor);
          return { cancelled };
        },
      },
      workerStarted: {
        visibility: "public",
        async handler(this: any, ctx: Context<WorkerCall>) {
          const { job, attempt } = await this.liveAttempt(ctx.params);
          const now = Date.now();
          if (job.state === "launching") {
            await rt.store.transition(job.id, { from: "launching", to: "running", attempt: { state: "running", startedAt: now, heartbeatAt: now }, event: { data: { via: "worker" } } });
            changed(this.broker, job.id);
          } else if (attempt.startedAt === null) {
            await rt.store.updateAttempt(job.id, attempt.attempt, { startedAt: now, heartbeatAt: now });
          }
          return { ok: true };
        },
      },
      workerHeartbeat: {
        visibility: "public",
        async handler(this: any, ctx: Context<WorkerCall>) {
          const { job, attempt } = await this.liveAttempt(ctx.params);
          await rt.store.updateAttempt(job.id, attempt.attempt, { heartbeatAt: Date.now() }, { onlyIfState: ["launching", "running"] });
          return { ok: true };
        },
      },
      workerResult: {
        visibility: "public",
        async handler(this: any, ctx: Context<WorkerCall & { result: JobResult }>) {
          const { job, attempt } = await this.liveAttempt(ctx.params);
          await rt.store.updateAttempt(job.id, attempt.attempt, { result: ctx.params.result, heartbeatAt: Date.now() }, { event: { kind: "attempt.result", data: { success: ctx.params.result.success ?? null, imageUrl: ctx.params.result.imageUrl ?? null } } });
          changed(this.broker, job.id);
          this.tickSoon();
          return { ok: true };
        },
      },
      workerLog: {
        visibility: "public",
        async handler(this: any, ctx: Context<WorkerCall & { lines: string[] }>) {
          const { job, attempt } = await this.liveAttempt(ctx.params);
          const text = [attempt.log, ...ctx.params.lines].filter((l) => l !== null).join("\n");
          await rt.store.updateAttempt(job.id, attempt.attempt, { log: tail(text), heartbeatAt: Date.now() }, { onlyIfState: ["launching", "running"] });
          return { ok: true };
        },
      },
      /** Once per attempt: the worker's only way to its job's secrets (they never travel in launch parameters). */
      workerSecrets: {
        visibility: "public",
        async handler(this: any, ctx: Context<WorkerCall>) {
          const { job, attempt } = await this.liveAttempt(ctx.params);
          const fetched = (await rt.store.getEvents(job.id)).some((e) => e.kind === "attempt.secrets_fetched" && e.attempt === attempt.attempt);
          if (fetched) throw blacktreeError("FORBIDDEN", "This attempt already fetched its secrets");
          const secrets = await rt.store.getSecrets(job.id);
          await rt.store.updateAttempt(job.id, attempt.attempt, {}, { event: { kind: "attempt.secrets_fetched", data: { names: Object.keys(secrets) } } });
          return { secrets };
        },
      },
      /** One reconcile pass now (tests and operators). */
      tick: {
        visibility: "public",
        async handler(this: any) {
          await this.tick();
          return { ok: true };
        },
      },
    },
    methods: {
      tickSoon(this: any) {
        setImmediate(() => this.tick());
      },
      async liveAttempt(this: any, call: WorkerCall): Promise<{ job: Job; attempt: Attempt }> {
        const job = await rt.store.getJob(call.jobId);
        if (!job || job.attempt !== call.attempt || isFinal(job.state) || job.state === "queued" || job.state === "retrying") {
          throw blacktreeError("FORBIDDEN", "This attempt is no longer live");
        }
        const attempt = await rt.store.getAttempt(job.id, job.attempt);
        if (!attempt || attempt.state === "exited" || attempt.state === "lost" || attempt.state === "stopped") throw blacktreeError("FORBIDDEN", "This attempt is no longer live");
        return { job, attempt };
      },

      async cancelJob(this: any, id: string, reason: string, by: string): Promise<Job> {
        for (;;) {
          const job: Job | null = await rt.store.getJob(id);
          if (!job) throw blacktreeError("JOB_NOT_FOUND", `No job '${id}'`);
          if (isFinal(job.state)) return job;
          const holdsCompute = job.state === "launching" || job.state === "running";
          // Record the decision first: the reconciler then never reads the worker's exit as a failure to retry.
          const cancelled = await rt.store.transition(id, {
            from: job.state,
            to: "cancelled",
            patch: { error: { type: "CANCELLED", message: reason } },
            attempt: holdsCompute ? { state: "stopped", endedAt: Date.now(), outcome: "CANCELLED", reason } : undefined,
            event: { data: { reason, by } },
          });
          if (!cancelled) continue; // the job moved meanwhile: look again
          this.logger.info(`✅ job ${id} cancelled by ${by}: ${reason}`);
          changed(this.broker, id);
          if (holdsCompute) await this.stopAttempt(cancelled, `cancelled: ${reason}`);
          await rt.store.wipeSecrets(id);
          return cancelled;
        }
      },

      async stopAttempt(this: any, job: Job, reason: string) {
        const attempt = await rt.store.getAttempt(job.id, job.attempt);
        if (!attempt?.handle) return;
        try {
          await this.broker.call(`${targetServiceName(attempt.target)}.stop`, { handle: attempt.handle, reason }, { timeout: 120_000, retries: 0 });
        } catch (err) {
          this.logger.warn(`⚠️ could not stop job ${job.id} attempt ${attempt.attempt} on '${attempt.target}': ${describeError(err).message}`);
        }
      },

      async tick(this: any) {
        if (ticking) return;
        ticking = true;
        const endTimer = jobMetrics.clockTick.startTimer();
        try {
          const now = Date.now();
          await this.reconcileActive(now);
          await this.requeueDue(now);
          await this.expireWaiting(now);
          await this.reapOrphans(now);
        } catch (err) {
          this.logger.error(`❌ lifecycle pass failed: ${describeError(err).message}`);
        } finally {
          endTimer();
          ticking = false;
        }
      },

      async reconcileActive(this: any, now: number) {
        const active: ActiveAttempt[] = await rt.store.activeAttempts();
        const byTarget = new Map<string, ActiveAttempt[]>();
        for (const a of active) {
          if (a.attempt.handle === null) {
            if (now - a.attempt.launchedAt > rt.env.relaunchAfterMs) this.relaunch(a);
            continue;
          }
          const list = byTarget.get(a.attempt.target) ?? [];
          list.push(a);
          byTarget.set(a.attempt.target, list);
        }
        await Promise.all([...byTarget.entries()].map(([target, list]) => this.reconcileTarget(target, list, now)));
      },

      relaunch(this: any, a: ActiveAttempt) {
        this.broker.call("dispatcher.relaunch", { jobId: a.job.id, attempt: a.attempt.attempt }).catch((err: unknown) => {
          this.logger.warn(`⚠️ relaunch of job ${a.job.id} failed: ${describeError(err).message}`);
        });
      },

      async reconcileTarget(this: any, target: string, list: ActiveAttempt[], now: number) {
        for (let i = 0; i < list.length; i += INSPECT_BATCH) {
          const batch = list.slice(i, i + INSPECT_BATCH);
          let statuses: TargetStatus[];
          try {
            statuses = await this.broker.call(`${targetServiceName(target)}.inspect`, { handles: batch.map((a) => a.attempt.handle) }, { timeout: 30_000, retries: 0 });
          } catch (err) {
            // An unreachable target is not proof the workers are gone: timeouts still apply below.
            this.logger.warn(`⚠️ cannot inspect target '${target}': ${describeError(err).message}`);
            statuses = [];
          }
          const byKey = new Map(statuses.map((s) => [s.key, s]));
          for (const a of batch) {
            try {
              await this.reconcileOne(a, byKey.get(a.attempt.key), statuses.length > 0 || batch.length === 0, now);
            } catch (err) {
              this.logger.error(`❌ reconcile of job ${a.job.id} failed: ${describeError(err).message}`);
            }
          }
        }
      },

      async reconcileOne(this: any, { job, attempt }: ActiveAttempt, status: TargetStatus | undefined, inspected: boolean, now: number) {
        if (status?.state === "exited") {
          const success = status.exitCode === 0 && attempt.result?.success !== false;
          const end: AttemptEnd = success
            ? { outcome: "SUCCEEDED", exitCode: 0, reason: "worker exited 0" }
            : {
                outcome: "EXIT_NONZERO",
                exitCode: status.exitCode,
                reason: (attempt.result?.error as string | undefined) ?? status.reason ?? `worker exited with code ${status.exitCode}`,
                retryable: attempt.result?.retryable !== false,
              };
          return this.finishAttempt(job, attempt, end, now);
        }
        if (status?.state === "lost" || (inspected && !status)) {
          // A worker that reported success, then vanished (an EC2 instance gone before it could tag its exit code), ended as it reported.
          if (attempt.result?.success === true) return this.finishAttempt(job, attempt, { outcome: "SUCCEEDED", reason: "the worker reported success; its worker is gone" }, now);
          return this.finishAttempt(job, attempt, { outcome: "WORKER_LOST", reason: status?.state === "lost" ? status.reason : "the target does not know this worker" }, now);
        }
        if (status?.state === "running" && job.state === "launching") {
          await rt.store.transition(job.id, { from: "launching", to: "running", attempt: { state: "running", startedAt: attempt.startedAt ?? now }, event: { data: { via: "target" } } });
          changed(this.broker, job.id);
          job = { ...job, state: "running" };
        }
        const fired = firedTimeout(job, attempt, now);
        if (fired) {
          await this.stopAttempt(job, `${fired.timeout} elapsed`);
          await this.finishAttempt(job, attempt, { outcome: fired.outcome, reason: `${fired.timeout} of ${fired.ms} ms elapsed`, timeout: fired.timeout, final: fired.timeout === "totalTimeout" }, now);
        }
      },

      async finishAttempt(this: any, job: Job, attempt: Attempt, end: AttemptEnd, now: number) {
        const log = (await this.collectLog(attempt)) ?? attempt.log;
        const next: Job | null = await endAttempt(rt.store, job, { ...end, log }, now);
        if (!next) return; // a cancel or another node decided first
        changed(this.broker, job.id);
        const how = `${next.state}${end.outcome === "SUCCEEDED" ? "" : ` (${end.reason})`}`;
        if (next.state === "succeeded") this.logger.info(`✅ job ${job.id} attempt ${attempt.attempt} ${how}`);
        else if (next.state === "retrying") this.logger.warn(`⚠️ job ${job.id} attempt ${attempt.attempt} ended: ${end.reason}; retrying at ${new Date(next.runAfter!).toISOString()}`);
        else this.logger.error(`❌ job ${job.id} attempt ${attempt.attempt} ${how}`);
        if (isFinal(next.state)) await this.onFinal(next);
      },

      async onFinal(this: any, job: Job) {
        await rt.store.wipeSecrets(job.id);
        if (job.state !== "succeeded") return;
        const taskType = rt.registry.taskType(job.type);
        const requests = taskType?.def.followUps?.({ id: job.id, type: job.type, deploymentId: job.deploymentId, attempt: job.attempt, params: job.params }, job.result ?? {}, rt.pluginContext(asPluginLogger(this.logger))) ?? [];
        for (const body of requests) {
          try {
            const { job: child } = await this.broker.call("intake.submit", { body, source: "internal", parentId: job.id });
            await rt.store.updateAttempt(job.id, job.attempt, {}, { event: { kind: "job.follow_up", data: { jobId: child.id, type: child.type } } });
            this.logger.info(`✅ job ${job.id} created follow-up ${child.type} job ${child.id}`);
          } catch (err) {
            this.logger.error(`❌ follow-up of job ${job.id} refused: ${describeError(err).message}`);
          }
        }
      },

      async collectLog(this: any, attempt: Attempt): Promise<string | null> {
        if (!attempt.handle) return null;
        try {
          const { lines } = await this.broker.call(`${targetServiceName(attempt.target)}.logs`, { handle: attempt.handle as TargetHandle }, { timeout: 10_000, retries: 0 });
          return (lines as string[]).length ? tail((lines as string[]).join("\n")) : null;
        } catch {
          return null;
        }
      },

      /** Stops workers that no live attempt owns (a launch that timed out but happened, a crash mid-cancel, …). */
      async reapOrphans(this: any, now: number) {
        if (now - lastReap < rt.env.reapIntervalMs) return;
        lastReap = now;
        for (const name of rt.registry.targets.keys()) {
          let keys: string[] | null;
          try {
            ({ keys } = await this.broker.call(`${targetServiceName(name)}.list`, {}, { timeout: 30_000, retries: 0 }));
          } catch {
            continue; // the target is not reachable now; next round
          }
          if (!keys?.length) continue;
          // Read the live set after the listing: a worker launched meanwhile was claimed before it.
          const live = new Set((await rt.store.activeAttempts()).map((a) => a.attempt.key));
          for (const key of keys.filter((k) => !live.has(k))) {
            this.logger.warn(`⚠️ stopping orphan worker ${key} on '${name}': no live attempt owns it`);
            await this.broker.call(`${targetServiceName(name)}.stop`, { handle: { key }, reason: "orphan: no live attempt owns it" }, { timeout: 120_000, retries: 0 }).catch((err: unknown) => {
              this.logger.warn(`⚠️ could not stop orphan ${key}: ${describeError(err).message}`);
            });
          }
        }
      },

      /** Retrying jobs whose backoff elapsed go back to the queue. */
      async requeueDue(this: any, now: number) {
        for (const job of await rt.store.jobsInStates(["retrying"])) {
          if (job.deadline !== null && job.deadline <= now) {
            await rt.store.transition(job.id, { from: "retrying", to: "timed_out", patch: { error: { type: "TIMED_OUT", message: "totalTimeout elapsed while waiting to retry" } }, event: { data: { timeout: "totalTimeout" } } });
            changed(this.broker, job.id);
            await rt.store.wipeSecrets(job.id);
          } else if ((job.runAfter ?? 0) <= now) {
            await rt.store.transition(job.id, { from: "retrying", to: "queued", event: { data: { nextAttempt: job.attempt + 1 } } });
            changed(this.broker, job.id);
          }
        }
      },

      /** Queued jobs past queueTimeout or totalTimeout never start. */
      async expireWaiting(this: any, now: number) {
        for (const job of await rt.store.jobsInStates(["queued"])) {
          const queueDeadline = job.timeouts.queueTimeout ? job.updatedAt + job.timeouts.queueTimeout : null;
          const which = job.deadline !== null && job.deadline <= now ? "totalTimeout" : queueDeadline !== null && queueDeadline <= now ? "queueTimeout" : null;
          if (!which) continue;
          const done = await rt.store.transition(job.id, { from: "queued", to: "timed_out", patch: { error: { type: "TIMED_OUT", message: `${which} elapsed before the job started` } }, event: { data: { timeout: which } } });
          if (done) {
            this.logger.error(`❌ job ${job.id} timed out in the queue (${which})`);
            changed(this.broker, job.id);
            await rt.store.wipeSecrets(job.id);
          }
        }
      },
    },
    started(this: any) {
      timer = setInterval(() => this.tick(), rt.env.reconcileIntervalMs);
      this.tickSoon(); // adopt whatever was in flight before a restart
    },
    stopped() {
      clearInterval(timer);
    },
  };
}

function tail(text: string): string {
  return text.length > STORED_LOG_BYTES ? text.slice(text.length - STORED_LOG_BYTES) : text;
}

/** The first timeout that has fired for a live attempt, from stored timestamps (so restarts resume, not reset, them). */
export function firedTimeout(job: Job, attempt: Attempt, now: number): { timeout: string; ms: number; outcome: "TIMED_OUT" | "WORKER_LOST" } | null {
  const t = job.timeouts;
  if (job.deadline !== null && job.deadline <= now) return { timeout: "totalTimeout", ms: t.totalTimeout, outcome: "TIMED_OUT" };
  if (attempt.startedAt === null && job.state === "launching") {
    if (t.startTimeout && now - attempt.launchedAt > t.startTimeout) return { timeout: "startTimeout", ms: t.startTimeout, outcome: "TIMED_OUT" };
    return null;
  }
  const started = attempt.startedAt ?? attempt.launchedAt;
  if (t.runTimeout && now - started > t.runTimeout) return { timeout: "runTimeout", ms: t.runTimeout, outcome: "TIMED_OUT" };
  const lastSign = attempt.heartbeatAt ?? started;
  if (t.heartbeatTimeout && now - lastSign > t.heartbeatTimeout) return { timeout: "heartbeatTimeout", ms: t.heartbeatTimeout, outcome: "WORKER_LOST" };
  return null;
}
