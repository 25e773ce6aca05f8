import type { Context, ServiceSchema } from "moleculer";
import type { AmqpLink } from "../lib/amqp/amqp-link";
import { handleExecuteMessage } from "../lib/amqp/execute-consumer";
import { replayBody } from "../lib/amqp/redact";
import { assertExecuteQueue, EXCHANGE, EXECUTE_KEY, EXECUTE_QUEUE } from "../lib/amqp/topology";
import { blacktreeError } from "../lib/errors";
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

/**
 * `intake.submit`: validates through `validator.validate`, then stores the job. Idempotent
 * on the job key: submitting the same key again returns the stored job (`created: false`).
 * With AMQP_URL it also consumes `execute.queue` (see lib/amqp/execute-consumer.ts).
 */
export function intakeService(rt: Runtime): ServiceSchema {
  const amqp = rt.env.amqpUrl !== null;
  return {
    name: "intake",
    mixins: amqp ? [amqpMixin(rt, { name: "blacktree-intake", setup: assertExecuteQueue })] : [],
    methods: {
      /** A `stop` ends its deployment's live jobs; with `coalesce`, a newer queued job supersedes older queued ones. */
      async cancelWhatItReplaces(ctx: Context, job: Job) {
        if (!job.deploymentId) return;
        const def = rt.registry.taskType(job.type)?.def;
        const scope = def?.cancelsOnSubmit?.({ id: job.id, type: job.type, deploymentId: job.deploymentId, attempt: 0, params: job.params });
        if (scope) {
          await ctx.call("lifecycle.cancelMatching", { deploymentId: scope.deploymentId, exceptId: job.id, reason: `stopped by ${job.type} job ${job.id}`, by: `job:${job.id}` });
        }
        if (rt.config.taskTypes[job.type]?.coalesce) {
          await ctx.call("lifecycle.cancelMatching", {
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
          const { body, source = "internal", idempotencyKey = null, parentId = null, submittedBy = null } = ctx.params;
          const job: NewJob = { ...(await ctx.call<NewJob, unknown>("validator.validate", { body, source, idempotencyKey, parentId })), submittedBy };
          const stored = await rt.store.createJob(job);
          if (stored.created) {
            this.logger.info(`✅ job ${job.id} queued (${job.type}${job.deploymentId ? `, deployment ${job.deploymentId}` : ""}, via ${source})`);
            ctx.broadcast("outbox.written", { jobId: job.id });
            await this.cancelWhatItReplaces(ctx, stored.job);
          }
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
      link.consume({
        queue: EXECUTE_QUEUE,
        prefetch: rt.env.amqpPrefetch,
        handle: (msg, delivery) =>
          handleExecuteMessage(msg, delivery, {
            store: rt.store,
            // Messages may arrive while the node is still starting: wait for the validator, call our own action directly.
            submit: async (body, idempotencyKey) => {
              await this.broker.waitForServices(["validator"], 30_000);
              return this.actions.submit({ body, source: "amqp", idempotencyKey });
            },
            publish: (exchange, key, content, options) => link.publish(exchange, key, content, options),
            notify: (jobId) => this.broker.broadcast("outbox.written", { jobId }),
            logger,
            maxBytes: rt.env.amqpMaxMessageBytes,
            requeueDelayMs: rt.env.amqpRequeueDelayMs,
            maxHandlingFailures: rt.env.amqpMaxRequeues,
          }),
      });
    },
  };
}

function deadLetterView(l: DeadLetter) {
  return { ...l, receivedAt: iso(l.receivedAt), replayedAt: iso(l.replayedAt) };
}
