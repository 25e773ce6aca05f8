import type { Context, ServiceSchema } from "moleculer";
import { normalizeJob, NormalizeInput } from "../lib/jobs/normalize";
import { asPluginLogger, Runtime } from "../lib/runtime";

/** `validator.validate`: envelope + the task type's schema + policy → a normalized job or field-level errors. */
export function validatorService(rt: Runtime): ServiceSchema {
  return {
    name: "validator",
    actions: {
      validate: {
        visibility: "public",
        async handler(ctx: Context<NormalizeInput>) {
          return normalizeJob(ctx.params, { registry: rt.registry, config: rt.config, ctx: rt.pluginContext(asPluginLogger(this.logger)) });
        },
      },
    },
  };
}
