import { deployTaskType } from "../../plugins/task-types/deploy";
import { deployerEnv } from "../../plugins/task-types/deploy/deployer-env";
import { stopTaskType } from "../../plugins/task-types/stop";
import { readDeployRequest, readDeploySettings } from "../../plugins/workers/deploy/settings";
import { serviceName } from "../../plugins/workers/deploy/ecs-deployer";
import { appContainerName } from "../../plugins/workers/deploy/docker-deployer";
import { quietContext } from "../support/quiet-context";
import { tempDir } from "../support/orchestrator";

describe("the deploy worker's settings", () => {
  test("docker is the default deployer, on network bridge with the port published, with a 60 s deadline", () => {
    expect(readDeploySettings({})).toEqual({ kind: "docker", socketPath: null, network: "bridge", publishPort: true, readyTimeoutMs: 60_000, pollMs: 250 });
    expect(readDeploySettings({ BLACKTREE_DEPLOY_DOCKER_NETWORK: "web", BLACKTREE_DEPLOY_DOCKER_PUBLISH: "0", BLACKTREE_DEPLOY_TIMEOUT_MS: "5000" })).toEqual(
      expect.objectContaining({ network: "web", publishPort: false, readyTimeoutMs: 5000 }),
    );
  });

  test("ecs needs a cluster; the rest has defaults", () => {
    expect(() => readDeploySettings({ BLACKTREE_DEPLOYER: "ecs" })).toThrow("BLACKTREE_DEPLOYER is ecs but BLACKTREE_DEPLOY_ECS_CLUSTER is not set");
    expect(readDeploySettings({ BLACKTREE_DEPLOYER: "ecs", BLACKTREE_DEPLOY_ECS_CLUSTER: "apps" })).toEqual({
      kind: "ecs",
      cluster: "apps",
      region: null,
      endpoint: null,
      servicePrefix: "blacktree-",
      container: null,
      readyTimeoutMs: 300_000,
      pollMs: 5000,
    });
  });

  test.each([
    [{ BLACKTREE_DEPLOYER: "k8s" }, "BLACKTREE_DEPLOYER must be docker or ecs (got 'k8s')"],
    [{ BLACKTREE_DEPLOY_TIMEOUT_MS: "soon" }, "BLACKTREE_DEPLOY_TIMEOUT_MS must be a whole number of milliseconds, at least 1 (got 'soon')"],
    [{ BLACKTREE_DEPLOY_POLL_MS: "1" }, "BLACKTREE_DEPLOY_POLL_MS must be a whole number of milliseconds, at least 10 (got '1')"],
    [{ BLACKTREE_DEPLOY_DOCKER_PUBLISH: "yes" }, "BLACKTREE_DEPLOY_DOCKER_PUBLISH must be 1 or 0 (got 'yes')"],
    [{ BLACKTREE_DEPLOYER: "ecs", BLACKTREE_DEPLOY_ECS_CLUSTER: "c", BLACKTREE_DEPLOY_ECS_ENDPOINT: "ecs.local" }, "BLACKTREE_DEPLOY_ECS_ENDPOINT must be an http(s) URL (got 'ecs.local')"],
    [{ BLACKTREE_DEPLOYER: "ecs", BLACKTREE_DEPLOY_ECS_CLUSTER: "c", BLACKTREE_DEPLOY_ECS_SERVICE_PREFIX: "a/b" }, "BLACKTREE_DEPLOY_ECS_SERVICE_PREFIX may hold letters, digits, '-' and '_' only (got 'a/b')"],
  ])("a bad setting is a non-retryable failure naming it: %o", (env, message) => {
    expect(() => readDeploySettings(env)).toThrow(expect.objectContaining({ message, retryable: false }));
  });

  test("the request comes from the workload env; a bad port is refused", () => {
    expect(readDeployRequest({ BLACKTREE_DEPLOYMENT_ID: "web", BLACKTREE_IMAGE_URL: "r/web:1", BLACKTREE_PORT: "8080", BLACKTREE_JOB_ID: "job_1", BLACKTREE_ATTEMPT: "2" })).toEqual({
      deploymentId: "web",
      imageUrl: "r/web:1",
      port: 8080,
      jobId: "job_1",
      attempt: 2,
    });
    expect(readDeployRequest({ BLACKTREE_DEPLOYMENT_ID: "web", BLACKTREE_PORT: "" }).port).toBeNull();
    expect(() => readDeployRequest({ BLACKTREE_DEPLOYMENT_ID: "web", BLACKTREE_PORT: "70000" })).toThrow("BLACKTREE_PORT must be a port number (got '70000')");
  });

  test("names: one container per attempt, one service per deployment", () => {
    const a = appContainerName({ deploymentId: "My.App", imageUrl: "x", port: null, jobId: "job_1", attempt: 1 });
    expect(a).toMatch(/^blacktree-app-my\.app-[0-9a-f]{10}$/);
    expect(appContainerName({ deploymentId: "My.App", imageUrl: "y", port: 1, jobId: "job_1", attempt: 1 })).toBe(a);
    expect(appContainerName({ deploymentId: "My.App", imageUrl: "x", port: null, jobId: "job_1", attempt: 2 })).not.toBe(a);
    expect(serviceName("blacktree-", "my.app")).toBe("blacktree-my-app");
  });
});

describe("the deploy and stop task types hand the deployer settings to their worker", () => {
  const env = { BLACKTREE_DEPLOYER: "ecs", BLACKTREE_DEPLOY_ECS_CLUSTER: "apps", BLACKTREE_DEPLOY_TIMEOUT_MS: "", AWS_SECRET_ACCESS_KEY: "never", DATABASE_URL: "postgres://u:p@db/x" };

  test("only the named variables that are set, never the rest of the environment", () => {
    expect(deployerEnv(env)).toEqual({ BLACKTREE_DEPLOYER: "ecs", BLACKTREE_DEPLOY_ECS_CLUSTER: "apps" });
  });

  test("in the workloads of both types", () => {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const ctx = quietContext(tempDir("bt-h11b-unit-"));
      const deploy = deployTaskType.toWorkload({ id: "job_d", type: "deploy", deploymentId: "web", attempt: 1, params: { deploymentId: "web", imageUrl: "r/web:1", portNumber: 8080, composeFilePath: "" } }, ctx);
      const stop = stopTaskType.toWorkload({ id: "job_s", type: "stop", deploymentId: "web", attempt: 1, params: { deploymentId: "web" } }, ctx);
      for (const w of [deploy, stop]) {
        expect(w.env).toEqual(expect.objectContaining({ BLACKTREE_DEPLOYER: "ecs", BLACKTREE_DEPLOY_ECS_CLUSTER: "apps" }));
        expect(JSON.stringify(w)).not.toMatch(/never|postgres:/);
      }
    } finally {
      process.env = saved;
    }
  });
});
