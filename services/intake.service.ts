import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import type { AmqpLink } from "../lib/amqp/amqp-link";
import { ExecuteIntake } from "../lib/amqp/execute-consumer";
import { replayBody } from "../lib/amqp/redact";
import { assertExecuteQueue, EXCHANGE, EXECUTE_KEY, EXECUTE_QUEUE } from "../lib/amqp/topology";
import type { Caller } from "../lib/auth/api-keys";
import { submissionEffects } from "../lib/engine/effects";
import { blacktreeError, errorType } from "../lib/errors";
import type { JobSource, NewJob } from "../lib/jobs/model";
import { iso, jobView } from "../lib/jobs/model";
import { asPluginLogger, Runtime } from "../lib/runtime";
import type { DeadLetter } from "../lib/store/job-store";
import type { IntakeTrace } from "../lib/tracing";
import { amqpMixin } from "../mixins/amqp.mixin";

export interface SubmitParams {
  body: unknown;
  source?: JobSource;
  idempotencyKey?: string | null;
  parentId?: string | null;
  /** The REST caller (its key's name and role). */
  caller?: Caller | null;
  /** Who the job belongs to when there is no caller: a follow-up inherits its parent's submitter. */
  submittedBy?: string | null;
  /** The W3C traceparent the submitter sent (REST), or a parent job's trace (follow-ups): the job's trace joins it. */
  traceparent?: string | null;
  /** execute.queue only (AMQP_UNKNOWN_FIELDS): unknown fields refused or dropped and logged. */
  unknownFields?: "refuse" | "drop";
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
    actions: {
      submit: {
        visibility: "public",
        async handler(ctx: Context<SubmitParams>) {
          const trace = rt.tracing.intake(ctx.params.source ?? "internal", ctx.params.traceparent);
          try {
            const stored = await rt.store.createJob(await toNewJob(rt, ctx, ctx.params, trace));
            trace.end({ jobId: stored.job.id, created: stored.created, state: stored.job.state });
            if (stored.created) this.logger.info(`✅ job ${stored.job.id} queued (${describe(stored.job)}, via ${stored.job.source})`);
            return { job: jobView(stored.job), created: stored.created };
          } catch (err) {
            trace.end({ error: err });
            throw err;
          }
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
          if (letter.properties.bodyKept === false) throw blacktreeError("NOTHING_TO_REPLAY", `Dead letter '${letter.id}' kept no body (${letter.reason}: it could not be parsed, so it could not be redacted): nothing to replay`);
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
      const broker: ServiceBroker = this.broker;
      const intake = new ExecuteIntake({
        store: rt.store,
        toNewJob: async (body, idempotencyKey, trace) => {
          const params = { body, source: "amqp" as const, idempotencyKey, unknownFields: rt.env.amqpUnknownFields };
          try {
            return await toNewJob(rt, broker, params, trace);
          } catch (err) {
            // Messages may arrive while the node is still starting: a validator not there yet is waited for, once.
            if (errorType(err) !== "SERVICE_NOT_FOUND" && errorType(err) !== "SERVICE_NOT_AVAILABLE") throw err;
            await broker.waitForServices(["validator"], 30_000);
            return toNewJob(rt, broker, params, trace);
          }
        },
        tracing: rt.tracing,
        publish: (exchange, key, content, options) => link.publish(exchange, key, content, options),
        logger: asPluginLogger(this.logger),
        maxBytes: rt.env.amqpMaxMessageBytes,
        requeueDelayMs: rt.env.amqpRequeueDelayMs,
        maxHandlingFailures: rt.env.amqpMaxRequeues,
        secretFields: [...new Set([...rt.registry.taskTypes.values()].flatMap((t) => t.def.secretFields ?? []))],
      });
      link.consume({ queue: EXECUTE_QUEUE, prefetch: rt.env.amqpPrefetch, handle: (msg, delivery) => intake.handle(msg, delivery) });
    },
  };
}

/**
 * The one way a body becomes a job to store, for REST (`intake.submit`) and AMQP alike:
 * `validator.validate`, who submitted it, and what accepting it cancels.
 */
async function toNewJob(rt: Runtime, broker: Pick<ServiceBroker, "call">, params: SubmitParams, trace: IntakeTrace): Promise<NewJob> {
  const { body, source = "internal", idempotencyKey = null, parentId = null, caller = null } = params;
  const unknownFields = source === "amqp" ? (params.unknownFields ?? "refuse") : "refuse";
  const job = await trace.validate(() => broker.call<NewJob, object>("validator.validate", { body, source, idempotencyKey, parentId, caller: caller ? { name: caller.name, role: caller.role } : null, unknownFields }));
  const submittedBy = caller?.name ?? params.submittedBy ?? null;
  // What accepting the job cancels reaches only what its submitter may cancel: a submitter's
  // own jobs (a follow-up's: its parent's submitter's); an operator's, an admin's and the backend's reach every job.
  const onlySubmittedBy = caller ? (caller.role === "submitter" ? caller.name : null) : submittedBy;
  return { ...job, submittedBy, traceContext: trace.traceContext, effects: submissionEffects(job, rt.registry, rt.config, { onlySubmittedBy }) };
}

function describe(job: { type: string; deploymentId: string | null }): string {
  return `${job.type}${job.deploymentId ? `, deployment ${job.deploymentId}` : ""}`;
}

function deadLetterView(l: DeadLetter) {
  return { ...l, body: l.properties.bodyKept === false ? null : l.body, receivedAt: iso(l.receivedAt), replayedAt: iso(l.replayedAt) };
}
