import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { basicRegistrySecrets, containerRun, registryEnv, workerImageCommand, type Workload } from "@blacktree/sdk";
import { runTaskType } from "@blacktree/sdk/testkit";
import { buildTaskType } from "../../plugins/task-types/build";
import { deployTaskType } from "../../plugins/task-types/deploy";
import { stopTaskType } from "../../plugins/task-types/stop";
import { testTaskType } from "../../plugins/task-types/test";
import { createProcessTarget } from "../../plugins/targets/process";
import { hostWorkerCommand } from "../../plugins/workers/host-command";
import { quietContext } from "../support/quiet-context";

/** Task types say what runs (a worker by name), targets decide how: the one rule, and the built-ins following it. */
describe("Workload.worker", () => {
  const policy = { allowLocalRepositories: true };
  const runs = () =>
    Promise.all([
      runTaskType(buildTaskType, { deploymentId: "d1", repository: "/srv/repo" }, { ctx: { policy } }),
      runTaskType(testTaskType, { deploymentId: "d1", repository: "/srv/repo" }, { ctx: { policy } }),
      runTaskType(deployTaskType, { deploymentId: "d1", imageUrl: "r.example/app:1" }),
      runTaskType(stopTaskType, { deploymentId: "d1" }),
    ]);

  test("the four built-in task types name a reference worker and never a host path", async () => {
    const workloads = (await runs()).map((r) => r.workload as Workload);
    expect(workloads.map((w) => w.worker)).toEqual(["build-worker", "build-worker", "deploy-worker", "deploy-worker"]);
    for (const w of workloads) {
      expect(w.command).toBeUndefined();
      expect(w.image).toBeUndefined();
      expect(JSON.stringify(w)).not.toContain(path.resolve(__dirname, "../.."));
    }
  });

  test("a build's image tag is per attempt, so a retry never moves an earlier attempt's tag", async () => {
    const job = { id: "job_0123456789ABCDEF", type: "build", deploymentId: "App", params: { deploymentId: "App", repository: "/srv/repo", branch: "main", dockerFilePath: "Dockerfile", contextDir: ".", composeFilePath: "", autoDeploy: false } };
    const ctx = quietContext(os.tmpdir());
    const first = buildTaskType.toWorkload({ ...job, attempt: 1 }, ctx).env.BLACKTREE_IMAGE_TAG;
    const second = buildTaskType.toWorkload({ ...job, attempt: 2 }, ctx).env.BLACKTREE_IMAGE_TAG;
    expect(first).toBe("blacktree/app:456789abcdef-1");
    expect(second).toBe("blacktree/app:456789abcdef-2");
  });

  test("containerRun: own image first, then the named worker from workerImage, then defaultImage; refusals say why", () => {
    expect(containerRun({ image: "own:1", command: ["run"], worker: "build-worker" }, { workerImage: "w:1" })).toEqual({ image: "own:1", command: ["run"] });
    expect(containerRun({ worker: "build-worker" }, { workerImage: "w:1", defaultImage: "d:1" })).toEqual({ image: "w:1", command: ["blacktree-worker", "build-worker"] });
    expect(containerRun({ command: ["x"] }, { workerImage: "w:1", defaultImage: "d:1" })).toEqual({ image: "d:1", command: ["x"] });
    expect(containerRun({ worker: "build-worker" }, { defaultImage: "d:1" })).toEqual({ refused: expect.stringContaining("no workerImage") });
    expect(containerRun({ worker: "../etc" }, { workerImage: "w:1" })).toEqual({ refused: expect.stringContaining("not a worker name") });
    expect(containerRun({}, {})).toEqual({ refused: expect.stringContaining("no image or worker") });
    expect(() => workerImageCommand("a b")).toThrow(/not a worker name/);
  });

  test("registryEnv carries the address and the secret names only; basic credentials go to the secrets fetch", () => {
    const registry = { url: "reg.example:5000", repositoryPrefix: "team/", username: "u", password: "p4ssw0rd" };
    const env = registryEnv(registry, { BLACKTREE_SECRETS: "token" });
    expect(env).toEqual({ BLACKTREE_SECRETS: "token,registryUsername,registryPassword", BLACKTREE_REGISTRY: "reg.example:5000", BLACKTREE_REGISTRY_PREFIX: "team/", BLACKTREE_REGISTRY_INSECURE: "false" });
    expect(JSON.stringify(env)).not.toContain("p4ssw0rd");
    expect(basicRegistrySecrets(registry)).toEqual({ registryUsername: "u", registryPassword: "p4ssw0rd" });
    expect(basicRegistrySecrets({ url: "x", ecr: true })).toBeNull();
    expect(registryEnv({ url: "x" }, {}).BLACKTREE_SECRETS).toBe(""); // no credentials: nothing to fetch
    expect(registryEnv(null, { A: "1" })).toEqual({ A: "1" });
  });

  test("the process target runs the host's copy of a reference worker and refuses a name it does not know", async () => {
    expect(hostWorkerCommand("build-worker")?.join(" ")).toMatch(/plugins\/workers\/build-worker\.(ts|js)$/);
    expect(hostWorkerCommand("acme-worker")).toBeNull();
    const target = createProcessTarget();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bt-h11a-proc-"));
    const ctx = quietContext(dataDir);
    await target.init?.({ stopGraceMs: 500 } as any, ctx);
    await expect(target.launch({ jobId: "j", attempt: 1, key: "j:1", workload: { worker: "acme-worker", env: {} }, labels: {} }, ctx)).rejects.toMatchObject({ type: "LAUNCH_FAILED", message: expect.stringContaining("not a reference worker") });
    await target.close?.();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
});
