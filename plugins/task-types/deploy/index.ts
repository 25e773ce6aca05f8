import { definePlugin, defineTaskType } from "@blacktree/sdk";
import * as f from "../fields";
import { deployerEnv } from "./deployer-env";

interface DeployParams {
  deploymentId: string;
  imageUrl: string;
  portNumber?: number;
  composeFilePath: string;
}

/** `deploy`: run a built image. One deploy or stop at a time per deployment. */
export const deployTaskType = defineTaskType<DeployParams>({
  name: "deploy",
  params: {
    deploymentId: f.deploymentId,
    imageUrl: { type: "string", empty: false, max: 512, pattern: /^[A-Za-z0-9][A-Za-z0-9._\/:@-]*$/ },
    portNumber: f.portNumber,
    composeFilePath: f.relativePath(""),
  },
  defaults: { timeouts: { runTimeout: 10 * 60_000 } },
  concurrencyKey: (job) => `deployment:${job.params.deploymentId}`,
  check(job) {
    f.checkPaths(job, ["composeFilePath"]);
    f.checkPort(job);
  },
  toWorkload(job) {
    return {
      worker: "deploy-worker",
      env: {
        BLACKTREE_ACTION: "deploy",
        BLACKTREE_DEPLOYMENT_ID: job.params.deploymentId,
        BLACKTREE_IMAGE_URL: job.params.imageUrl,
        BLACKTREE_PORT: job.params.portNumber ? String(job.params.portNumber) : "",
        ...deployerEnv(),
      },
    };
  },
});

export default definePlugin({ name: "task-deploy", apiVersion: "^1.0.0", taskTypes: [deployTaskType] });
