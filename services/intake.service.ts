import type { Context, ServiceSchema } from "moleculer";
import type { AmqpLink } from "../lib/amqp/amqp-link";
import { ExecuteIntake } from "../lib/amqp/execute-consumer";
import { replayBody } from "../lib/amqp/redact";
import { assertExecuteQueue, EXCHANGE, EXECUTE_KEY, EXECUTE_QUEUE } from "../lib/amqp/topology";
import { blacktreeError, errorType } from "../lib/errors";
import type { Job, JobSource, NewJob } from "../lib/jobs/model";
import { iso, jobView } from "../lib/jobs/model";
import { asPluginLogger, Runtime } from "../lib/runtime";
import type { DeadLetter } from "../lib/store/job-store";
import { amqpMixin } from "../mixins/amqp.mixin";

export interface SubmitParams {
  body: unknown;
  source?: JobSource;
  idempotencyKey?: string | null;
  parentId?: string | null;
  /** Name of the API key that submitted it (REST). */
  submittedBy?: string | null;
}

/** What a Moleculer `Context` and the `ServiceBroker` both offer. */
interface Caller {
  call(action: string, params: object): Promise<unknown>;
  broadcast(event: string, payload: object): unknown;
}

/**
 * The one way a body becomes a job to store, for REST (`intake.submit`) and AMQP
 * (execute.queue batches) alike: `validator.validate`, plus who submitted it.
 */
export async function toNewJob(caller: Caller, params: SubmitParams): Promise<NewJob> {
  const { body, source = "internal", idempotencyKey = null, parentId = null, submittedBy = null } = params;
  const job = (await caller.call("validator.validate", { body, source, idempotencyKey, parentId })) as NewJob;
  return { ...job, submittedBy };
}

/**
 * `intake.submit`: validates through `validator.validate`, then stores the job. Idempotent
 * on the job key: submitting the same key again returns the stored job (`created: false`).
 * With AMQP_URL it also consumes `execute.queue` in batches (see lib/amqp/execute-consumer.ts).
 */
export function intakeService(rt: Runtime): ServiceSchema {
  const amqp = rt.env.amqpUrl !== null;
  return {
    name: "intake",
    mixins: amqp ? [amqpMixin(rt, { name: "blacktree-intake", setup: assertExecuteQueue })] : [],
    methods: {
      /**
       * After a commit, for the jobs it created (in order; AMQP batches include rejected ones):
       * log, wake the dispatcher and the status sinks once, then cancel what each replaces.
       */
      async jobsCreated(caller: Caller, jobs: Job[]) {
        if (jobs.length === 0) return;
        const accepted = jobs.filter((j) => j.state !== "rejected");
        for (const job of accepted) this.logger.info(`✅ job ${job.id} queued (${job.type}${job.deploymentId ? `, deployment ${job.deploymentId}` : ""}, via ${job.source})`);
        caller.broadcast("outbox.written", jobs.length === 1 ? { jobId: jobs[0].id } : { jobId: jobs[0].id, jobIds: jobs.map((j) => j.id) });
        let failed: unknown = null;
        for (const job of accepted) {
          try {
            await this.cancelWhatItReplaces(caller, job);
          } catch (err) {
            failed ??= err;
          }
        }
        if (failed !== null) throw failed;
      },
      /**
       * A `stop` ends its deployment's live jobs; with `coalesce`, a newer queued job supersedes
       * older queued ones. Runs after the job's commit (the engine will move it into the store's transaction).
       */
      async cancelWhatItReplaces(caller: Caller, job: Job) {
        if (!job.deploymentId) return;
        const def = rt.registry.taskType(job.type)?.def;
        const scope = def?.cancelsOnSubmit?.({ id: job.id, type: job.type, deploymentId: job.deploymentId, attempt: 0, params: job.params });
        if (scope) {
          await caller.call("lifecycle.cancelMatching", { deploymentId: scope.deploymentId, exceptId: job.id, reason: `stopped by ${job.type} job ${job.id}`, by: `job:${job.id}` });
        }
        if (rt.config.taskTypes[job.type]?.coalesce) {
          await caller.call("lifecycle.cancelMatching", {
            deploymentId: job.deploymentId,
            type: job.type,
            states: ["queued"],
            createdBefore: job.createdAt,
            exceptId: job.id,
            reason: `superseded by job ${job.id}`,
            by: `job:${job.id}`,
          });
        }
      },
    },
    actions: {
      submit: {
        visibility: "public",
        async handler(ctx: Context<SubmitParams>) {
          const stored = await rt.store.createJob(await toNewJob(ctx, ctx.params));
          if (stored.created) await this.jobsCreated(ctx, [stored.job]);
          return { job: jobView(stored.job), created: stored.created };
        },
      },
      deadLetters: {
        visibility: "public",
        async handler(ctx: Context<{ limit?: number }>) {
          return { items: (await rt.store.listDeadLetters(ctx.params.limit)).map(deadLetterView) };
        },
      },
      /** Publishes the stored body to `execute.queue` again, confirmed (without a token: it was never kept). */
      replayDeadLetter: {
        visibility: "public",
        params: { id: "string" },
        async handler(this: any, ctx: Context<{ id: string }>) {
          const letter = await rt.store.getDeadLetter(ctx.params.id);
          if (!letter) throw blacktreeError("DEAD_LETTER_NOT_FOUND", `No dead letter '${ctx.params.id}'`);
          if (!amqp) throw blacktreeError("AMQP_UNAVAILABLE", "Replay needs AMQP_URL: dead letters go back to execute.queue");
          await (this.amqp as AmqpLink).publish(EXCHANGE, EXECUTE_KEY, Buffer.from(replayBody(letter.body)), { persistent: true, headers: { "x-blacktree-replay-of": letter.id } });
          const replayed = await rt.store.markDeadLetterReplayed(letter.id);
          this.logger.info(`🔄 dead letter ${letter.id} replayed to ${EXECUTE_QUEUE}`);
          return { deadLetter: deadLetterView(replayed ?? letter) };
        },
      },
    },
    created(this: any) {
      if (!amqp) return;
      const link: AmqpLink = this.amqp;
      const logger = asPluginLogger(this.logger);
      const intake = new ExecuteIntake(
        {
          store: rt.store,
          // Messages may arrive while the node is still starting: a validator not there yet is waited for (30 s), once.
          toNewJob: async (body, idempotencyKey) => {
            const params = { body, source: "amqp" as const, idempotencyKey };
            try {
              return await toNewJob(this.broker, params);
            } catch (err) {
              if (errorType(err) !== "SERVICE_NOT_FOUND" && errorType(err) !== "SERVICE_NOT_AVAILABLE") throw err;
              await this.broker.waitForServices(["validator"], 30_000);
              return toNewJob(this.broker, params);
            }
          },
          afterCommit: (created) => this.jobsCreated(this.broker, created),
          publish: (exchange, key, content, options) => link.publish(exchange, key, content, options),
          logger,
          maxBytes: rt.env.amqpMaxMessageBytes,
          requeueDelayMs: rt.env.amqpRequeueDelayMs,
          maxHandlingFailures: rt.env.amqpMaxRequeues,
        },
        { windowMs: rt.env.amqpBatchWindowMs, maxMessages: rt.env.amqpPrefetch },
      );
      link.consume({ queue: EXECUTE_QUEUE, prefetch: rt.env.amqpPrefetch, handle: (msg, delivery) => intake.handle(msg, delivery) });
    },
  };
}

function deadLetterView(l: DeadLetter) {
  return { ...l, receivedAt: iso(l.receivedAt), replayedAt: iso(l.replayedAt) };
}
