import path from "node:path";
import { loadPluginsConfig, PluginsConfig } from "../../lib/config/plugins-config";
import { restJobId } from "../../lib/jobs/model";
import { normalizeJob } from "../../lib/jobs/normalize";
import { loadPlugins } from "../../lib/plugins/loader";
import type { PluginRegistry } from "../../lib/plugins/registry";
import type { PluginContext } from "../../lib/plugins/sdk";

const root = path.resolve(__dirname, "../..");
const silent = { info() {}, warn() {}, error() {}, debug() {} };

function setup(mode: "development" | "production") {
  const config = loadPluginsConfig(path.join(root, "plugins.config.json"), {}, mode);
  const registry = loadPlugins(config, { baseDir: root });
  const ctx: PluginContext = { logger: silent, dataDir: "/tmp", mode, policy: config.policy };
  return { config, registry, ctx };
}

let dev: { config: PluginsConfig; registry: PluginRegistry; ctx: PluginContext };
let prod: typeof dev;
beforeAll(() => {
  dev = setup("development");
  prod = setup("production");
});

const legacy = {
  deploymentId: "abc123",
  token: "ghp_secretsecretsecret",
  repository: "user/repo",
  branch: "main",
  dockerFilePath: "./Dockerfile",
  composeFilePath: "",
  contextDir: ".",
  createdAt: "2025-07-09T12:00:00Z",
  portNumber: "3000",
  autoDeploy: true,
};

async function fields(body: unknown, deps = dev) {
  try {
    await normalizeJob({ body, source: "rest" }, deps);
  } catch (err: any) {
    return { type: err.type, fields: (err.data?.fields ?? []).map((f: any) => f.field) };
  }
  throw new Error("expected the job to be refused");
}

describe("job validation", () => {
  test("the legacy DeploymentMessage is a build, normalized, with the token kept apart", async () => {
    const job = await normalizeJob({ body: { ...legacy, unknownExtra: 1 }, source: "amqp", unknownFields: "drop" }, dev);
    expect(job.type).toBe("build");
    expect(job.params).toEqual({
      deploymentId: "abc123",
      repository: "https://github.com/user/repo",
      branch: "main",
      dockerFilePath: "Dockerfile",
      composeFilePath: "",
      contextDir: ".",
      portNumber: 3000,
      autoDeploy: true,
    });
    expect(job.secrets).toEqual({ token: legacy.token });
    expect(JSON.stringify({ ...job, secrets: undefined })).not.toContain(legacy.token);
    expect(job.target).toBe("process");
  });

  test("the same (type, deploymentId, createdAt) gives the same id; an explicit key wins", async () => {
    const a = await normalizeJob({ body: legacy, source: "amqp" }, dev);
    const b = await normalizeJob({ body: { ...legacy, branch: "dev" }, source: "amqp" }, dev);
    expect(a.id).toBe(b.id);
    expect((await normalizeJob({ body: legacy, source: "amqp", idempotencyKey: "key-1" }, dev)).id).toBe("key-1");
    expect((await normalizeJob({ body: { ...legacy, jobId: "explicit" }, source: "amqp", idempotencyKey: "key-1" }, dev)).id).toBe("explicit");
  });

  test("REST keys and hashes live in the caller's namespace, never the backend's", async () => {
    const alice = { name: "alice", role: "submitter" as const };
    const amqp = await normalizeJob({ body: legacy, source: "amqp" }, dev);
    const rest = await normalizeJob({ body: legacy, source: "rest", caller: alice }, dev);
    expect(rest.id).not.toBe(amqp.id);
    expect(rest.id).toBe(restJobId("alice", amqp.id));
    expect((await normalizeJob({ body: legacy, source: "rest", idempotencyKey: "key-1", caller: alice }, dev)).id).toBe(restJobId("alice", "key-1"));
    expect((await normalizeJob({ body: { ...legacy, jobId: "explicit" }, source: "rest", idempotencyKey: "key-1", caller: alice }, dev)).id).toBe(restJobId("alice", "explicit"));
    expect(restJobId("alice", "k")).not.toBe(restJobId("bob", "k"));
  });

  test("without createdAt or a key every submission is a new job", async () => {
    const { createdAt: _c, ...body } = legacy;
    const a = await normalizeJob({ body, source: "rest" }, dev);
    const b = await normalizeJob({ body, source: "rest" }, dev);
    expect(a.id).not.toBe(b.id);
  });

  test.each([
    [{ ...legacy, type: 42 }, "type"],
    [{ ...legacy, deploymentId: undefined }, "deploymentId"],
    [{ ...legacy, repository: 7 }, "repository"],
    [{ ...legacy, branch: "--upload-pack=evil" }, "branch"],
    [{ ...legacy, branch: "a..b" }, "branch"],
    [{ ...legacy, dockerFilePath: "../../etc/passwd" }, "dockerFilePath"],
    [{ ...legacy, contextDir: "/abs" }, "contextDir"],
    [{ ...legacy, portNumber: "70000" }, "portNumber"],
    [{ ...legacy, repository: "ext::sh -c evil" }, "repository"],
    [{ ...legacy, repository: "https://user:pw@github.com/a/b" }, "repository"],
    [{ ...legacy, repository: "http://github.com/a/b" }, "repository"],
    [{ ...legacy, repository: "https://169.254.169.254/a/b" }, "repository"],
    [{ ...legacy, priority: 1.5 }, "priority"],
    [{ ...legacy, timeouts: { runTimeout: 99_999_999 } }, "timeouts.runTimeout"],
    [{ ...legacy, retry: { maxAttempts: 0 } }, "retry.maxAttempts"],
    [{ ...legacy, target: "mars" }, "target"],
  ])("refuses %j naming %s", async (body, field) => {
    const r = await fields(body);
    expect(r.type).toBe("VALIDATION_FAILED");
    expect(r.fields).toContain(field);
  });

  test("an unknown task type is UNKNOWN_TASK_TYPE naming `type`", async () => {
    expect(await fields({ ...legacy, type: "teleport" })).toEqual({ type: "UNKNOWN_TASK_TYPE", fields: ["type"] });
  });

  test("non-objects and prototype-pollution keys are refused", async () => {
    expect((await fields([1, 2])).type).toBe("VALIDATION_FAILED");
    expect((await fields(JSON.parse(`{"deploymentId":"a","repository":"a/b","__proto__":{"polluted":1}}`))).fields).toContain("__proto__");
    expect(({} as any).polluted).toBeUndefined();
  });

  test("local repositories only where the policy allows them", async () => {
    const body = { ...legacy, repository: "/tmp/some/repo" };
    expect((await normalizeJob({ body, source: "rest" }, dev)).params.repository).toBe("/tmp/some/repo");
    expect((await fields(body, prod)).fields).toContain("repository");
  });

  test("deploy and stop share the deployment's concurrency key", async () => {
    const deploy = await normalizeJob({ body: { type: "deploy", deploymentId: "d1", imageUrl: "blacktree/d1:abc" }, source: "rest" }, dev);
    const stop = await normalizeJob({ body: { type: "stop", deploymentId: "d1" }, source: "rest" }, dev);
    expect(deploy.concurrencyKey).toBe("deployment:d1");
    expect(stop.concurrencyKey).toBe(deploy.concurrencyKey);
  });
});
