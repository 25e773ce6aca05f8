import { checkGitRef, checkRepository, checkRepositoryHost, definePlugin, defineTaskType, fieldError } from "@blacktree/sdk";
import * as f from "../fields";

interface TestParams {
  deploymentId: string;
  repository: string;
  branch: string;
  contextDir: string;
  testCommand?: string;
}

/**
 * `test`: clone a repository and run its test command in the worker. Running a command
 * given in a job is only allowed where policy says so (on by default in development).
 */
export const testTaskType = defineTaskType<TestParams>({
  name: "test",
  params: {
    deploymentId: f.deploymentId,
    token: f.token,
    repository: f.repository,
    branch: f.branch,
    contextDir: f.relativePath("."),
    testCommand: { type: "string", optional: true, max: 1000 },
  },
  secretFields: ["token"],
  defaults: { timeouts: { runTimeout: 30 * 60_000 } },
  async check(job, ctx) {
    job.params.repository = checkRepository(job.params.repository, { allowLocalRepositories: ctx.policy.allowLocalRepositories === true });
    await checkRepositoryHost(job.params.repository, ctx.policy, ctx.resolveHost);
    job.params.branch = checkGitRef(job.params.branch);
    f.checkPaths(job, ["contextDir"]);
    if (job.params.testCommand && ctx.policy.allowTestCommands !== true) fieldError("testCommand", "is not allowed by this orchestrator's policy");
  },
  toWorkload(job) {
    return {
      worker: "build-worker",
      env: {
        BLACKTREE_ACTION: "test",
        BLACKTREE_REPOSITORY: job.params.repository,
        BLACKTREE_BRANCH: job.params.branch,
        BLACKTREE_CONTEXT_DIR: job.params.contextDir,
        BLACKTREE_TEST_COMMAND: job.params.testCommand ?? "",
      },
      secrets: ["token"],
    };
  },
});

export default definePlugin({ name: "task-test", apiVersion: "^1.0.0", taskTypes: [testTaskType] });
