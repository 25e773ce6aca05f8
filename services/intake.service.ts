import type { Context, ServiceSchema } from "moleculer";
import type { JobSource, NewJob } from "../lib/jobs/model";
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
          }
          return { job: jobView(stored.job), created: stored.created };
        },
      },
    },
  };
}
