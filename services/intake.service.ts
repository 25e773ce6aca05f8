import type { Context, ServiceSchema } from "moleculer";
import type { Job, JobSource, NewJob } from "../lib/jobs/model";
import { jobView } from "../lib/jobs/model";
import type { Runtime } from "../lib/runtime";

export interface SubmitParams {
  body: unknown;
  source?: JobSource;
  idempotencyKey?: string | null;
  parentId?: string | null;
}

/**
 * `intake.submit`: validates through `validator.validate`, then stores the job. Idempotent
 * on the job key: submitting the same key again returns the stored job (`created: false`).
 */
export function intakeService(rt: Runtime): ServiceSchema {
  return {
    name: "intake",
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
          const { body, source = "internal", idempotencyKey = null, parentId = null } = ctx.params;
          const job: NewJob = await ctx.call("validator.validate", { body, source, idempotencyKey, parentId });
          const stored = await rt.store.createJob(job);
          if (stored.created) {
            this.logger.info(`✅ job ${job.id} queued (${job.type}${job.deploymentId ? `, deployment ${job.deploymentId}` : ""}, via ${source})`);
            ctx.broadcast("outbox.written", { jobId: job.id });
            await this.cancelWhatItReplaces(ctx, stored.job);
          }
          return { job: jobView(stored.job), created: stored.created };
        },
      },
    },
  };
}
