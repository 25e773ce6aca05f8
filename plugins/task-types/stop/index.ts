import { definePlugin, defineTaskType } from "@blacktree/sdk";
import * as f from "../fields";
import { deployerEnv } from "../deploy/deployer-env";

/** `stop`: stop what a deployment's deploy started. Shares the deploy's concurrency key, so it never races one. */
export const stopTaskType = defineTaskType<{ deploymentId: string }>({
  name: "stop",
  params: { deploymentId: f.deploymentId },
  defaults: { timeouts: { runTimeout: 5 * 60_000 }, priority: 10 },
  concurrencyKey: (job) => `deployment:${job.params.deploymentId}`,
  cancelsOnSubmit: (job) => ({ deploymentId: job.params.deploymentId }),
  toWorkload(job) {
    return {
      worker: "deploy-worker",
      env: { BLACKTREE_ACTION: "stop", BLACKTREE_DEPLOYMENT_ID: job.params.deploymentId, ...deployerEnv() },
    };
  },
});

export default definePlugin({ name: "task-stop", apiVersion: "^1.0.0", taskTypes: [stopTaskType] });
