import { checkGitRef, checkRepository, checkRepositoryHost, definePlugin, defineTaskType, type JobRequest } from "@blacktree/sdk";
import * as f from "../fields";

interface BuildParams {
  deploymentId: string;
  repository: string;
  branch: string;
  dockerFilePath: string;
  composeFilePath: string;
  contextDir: string;
  portNumber?: number;
  autoDeploy: boolean;
}

/** `build`: clone a repository and build its image. The legacy backend's default type. */
export const buildTaskType = defineTaskType<BuildParams>({
  name: "build",
  params: {
    deploymentId: f.deploymentId,
    token: f.token,
    repository: f.repository,
    branch: f.branch,
    dockerFilePath: f.relativePath("Dockerfile"),
    composeFilePath: f.relativePath(""),
    contextDir: f.relativePath("."),
    portNumber: f.portNumber,
    autoDeploy: f.autoDeploy,
  },
  secretFields: ["token"],
  defaults: {
    timeouts: { runTimeout: 30 * 60_000 },
    retry: { maxAttempts: 2, retryOn: ["LAUNCH_FAILED", "WORKER_LOST"] },
  },
  async check(job, ctx) {
    job.params.repository = checkRepository(job.params.repository, { allowLocalRepositories: ctx.policy.allowLocalRepositories === true });
    await checkRepositoryHost(job.params.repository, ctx.policy, ctx.resolveHost);
    job.params.branch = checkGitRef(job.params.branch);
    f.checkPaths(job, ["dockerFilePath", "composeFilePath", "contextDir"]);
    f.checkPort(job);
  },
  toWorkload(job) {
    return {
      worker: "build-worker",
      env: {
        BLACKTREE_REPOSITORY: job.params.repository,
        BLACKTREE_BRANCH: job.params.branch,
        BLACKTREE_DOCKERFILE_PATH: job.params.dockerFilePath,
        BLACKTREE_CONTEXT_DIR: job.params.contextDir,
        BLACKTREE_IMAGE_TAG: f.imageTag(job),
      },
      secrets: ["token"],
    };
  },
  followUps(job, result): JobRequest[] {
    if (!job.params.autoDeploy || !result.imageUrl) return [];
    return [{ type: "deploy", deploymentId: job.params.deploymentId, imageUrl: result.imageUrl, portNumber: job.params.portNumber, idempotencyKey: `${job.id}.deploy` }];
  },
});

export default definePlugin({ name: "task-build", apiVersion: "^1.0.0", taskTypes: [buildTaskType] });
