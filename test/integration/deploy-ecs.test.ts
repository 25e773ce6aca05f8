import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { CreateServiceCommand, DescribeTaskDefinitionCommand, ECSClient, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import { startAwsEmulator, useDummyAwsCredentials, type AwsEmulator } from "../support/aws-emulator";
import { startNode, tempDir, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/**
 * `deploy` and `stop` on ECS, against the AWS emulator over HTTP with the real SDK: the
 * process target runs the host deploy worker, whose ECS deployer registers a task
 * definition revision with the image, updates the deployment's service and waits for it
 * to be steady. The worker's credentials come from a profile file in its HOME (as on a
 * developer's machine; on ECS the task role), never from the orchestrator.
 */
const RUN = randomBytes(3).toString("hex");
const CLUSTER = `bt-h11b-cluster-${RUN}`;
const FAMILY = `bt-h11b-app-${RUN}`;
const WORKER_KEY_ID = "AKIABTH11BWORKER0000";
const WORKER_SECRET = "bt-h11b-worker-profile-secret";
let emu: AwsEmulator;
let ecs: ECSClient;
let node: TestNode;
const originalHome = process.env.HOME;
let services = 0;

beforeAll(async () => {
  useDummyAwsCredentials(); // the test's own client
  emu = await startAwsEmulator({ ecs: { rolloutMs: 300 } });
  ecs = new ECSClient({ endpoint: emu.endpoint, region: "us-east-1" });
  const home = tempDir("bt-h11b-home-");
  fs.mkdirSync(path.join(home, ".aws"));
  fs.writeFileSync(path.join(home, ".aws", "credentials"), `[default]\naws_access_key_id = ${WORKER_KEY_ID}\naws_secret_access_key = ${WORKER_SECRET}\n`, { mode: 0o600 });
  process.env.HOME = home; // the process target hands HOME to its workers
  Object.assign(process.env, {
    BLACKTREE_DEPLOYER: "ecs",
    BLACKTREE_DEPLOY_ECS_CLUSTER: CLUSTER,
    BLACKTREE_DEPLOY_ECS_REGION: "us-east-1",
    BLACKTREE_DEPLOY_ECS_ENDPOINT: emu.endpoint,
    BLACKTREE_DEPLOY_TIMEOUT_MS: "8000",
    BLACKTREE_DEPLOY_POLL_MS: "50",
  });
  node = await startNode();
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await emu?.stop();
  process.env.HOME = originalHome;
});

/** A service as the operator creates it: task definition revision 1 (roles, sizes, a sidecar), `desiredCount` tasks. */
async function createService(deploymentId: string, desiredCount: number): Promise<string> {
  const family = `${FAMILY}-${++services}`;
  const td = await ecs.send(
    new RegisterTaskDefinitionCommand({
      family,
      taskRoleArn: "arn:aws:iam::000000000000:role/bt-h11b-app",
      executionRoleArn: "arn:aws:iam::000000000000:role/bt-h11b-exec",
      networkMode: "awsvpc",
      requiresCompatibilities: ["FARGATE"],
      cpu: "256",
      memory: "512",
      containerDefinitions: [
        { name: "app", image: "registry.example/app:v0", essential: true, portMappings: [{ containerPort: 8080 }], environment: [{ name: "MODE", value: "prod" }] },
        { name: "log-router", image: "registry.example/fluent-bit:1", essential: false },
      ],
      tags: [{ key: "team", value: "bt-h11b" }],
    }),
  );
  await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: `blacktree-${deploymentId}`, taskDefinition: td.taskDefinition!.taskDefinitionArn!, desiredCount }));
  await waitFor(() => emu.ecs.serviceView(CLUSTER, `blacktree-${deploymentId}`)?.runningCount === desiredCount || null, { message: "the new service never ran its tasks" });
  return family;
}

const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];

async function run(body: Record<string, unknown>) {
  const res = await node.http("POST", "/api/jobs", body);
  expect(res.status).toBe(202);
  const id = res.body.job.id;
  const done = await waitFor(async () => {
    const r = await node.http("GET", `/api/jobs/${id}`);
    return FINAL.includes(r.body?.job?.state) ? r.body : null;
  }, { timeout: 60_000, message: `job ${id} never ended` });
  const logs = (await node.http("GET", `/api/jobs/${id}/logs`)).body.attempts.flatMap((a: any) => a.lines) as string[];
  return { job: done.job, attempts: done.attempts, logs };
}

const imageOf = async (taskDefinition: string) =>
  (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition }))).taskDefinition!.containerDefinitions!.find((c) => c.name === "app")!.image;

test("a deploy registers a task definition revision with the image and waits for the service to be steady; stop scales it to zero", async () => {
  // The task definition has two containers: the setting names the one that runs the image.
  process.env.BLACKTREE_DEPLOY_ECS_CONTAINER = "app";
  const dep = `bt-h11b-ecs-${RUN}`;
  const family = await createService(dep, 2);
  const since = Date.now();
  const deployed = await run({ type: "deploy", deploymentId: dep, imageUrl: "registry.example/app:v1", portNumber: "8080" });
  expect(deployed.job.state).toBe("succeeded");
  // The worker signed with its own profile's key, not the orchestrator's (which the workload never carries); no log line holds a secret.
  const signers = new Set(emu.calls.filter((c) => c.at >= since && c.service === "ecs").map((c) => c.accessKeyId));
  expect(signers).toEqual(new Set([WORKER_KEY_ID]));
  const service = emu.ecs.serviceView(CLUSTER, `blacktree-${dep}`)!;
  expect(service.taskDefinition).toMatch(new RegExp(`task-definition/${family}:2$`));
  expect(service.deployments).toHaveLength(1);
  expect(service).toEqual(expect.objectContaining({ desiredCount: 2, runningCount: 2 }));
  expect(deployed.job.result.message).toBe(`deployed registry.example/app:v1 to service blacktree-${dep} as ${service.taskDefinition}: steady with 2 task(s)`);
  // The revision is the old one with the new image: roles, sizes, the other container, env and tags kept.
  const revision = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: service.taskDefinition, include: ["TAGS"] }));
  expect(revision.taskDefinition).toEqual(
    expect.objectContaining({ taskRoleArn: "arn:aws:iam::000000000000:role/bt-h11b-app", executionRoleArn: "arn:aws:iam::000000000000:role/bt-h11b-exec", cpu: "256", memory: "512", networkMode: "awsvpc" }),
  );
  expect(revision.taskDefinition!.containerDefinitions!.map((c) => [c.name, c.image])).toEqual([
    ["app", "registry.example/app:v1"],
    ["log-router", "registry.example/fluent-bit:1"],
  ]);
  expect(revision.taskDefinition!.containerDefinitions![0].environment).toEqual([{ name: "MODE", value: "prod" }]);
  expect(revision.tags).toEqual([{ key: "team", value: "bt-h11b" }]);
  expect(emu.count("RegisterTaskDefinition", since)).toBe(1);
  expect(emu.count("UpdateService", since)).toBe(1);
  expect(deployed.logs.join("\n")).toMatch(/waiting up to 8000 ms for service .* to be steady/);
  expect(deployed.logs.join("\n")).not.toContain(WORKER_SECRET);
  expect(deployed.logs.join("\n")).not.toContain(process.env.AWS_SECRET_ACCESS_KEY);

  const stopped = await run({ type: "stop", deploymentId: dep });
  expect(stopped.job.state).toBe("succeeded");
  expect(emu.ecs.serviceView(CLUSTER, `blacktree-${dep}`)).toEqual(expect.objectContaining({ desiredCount: 0, runningCount: 0 }));

  // A deploy after a stop brings one task back.
  const again = await run({ type: "deploy", deploymentId: dep, imageUrl: "registry.example/app:v2" });
  expect(again.job.state).toBe("succeeded");
  const back = emu.ecs.serviceView(CLUSTER, `blacktree-${dep}`)!;
  expect(back).toEqual(expect.objectContaining({ desiredCount: 1, runningCount: 1 }));
  expect(await imageOf(back.taskDefinition)).toBe("registry.example/app:v2");
  delete process.env.BLACKTREE_DEPLOY_ECS_CONTAINER;
}, 120_000);

test("a failed rollout fails the deploy, and the service goes back to the previous revision", async () => {
  const dep = `bt-h11b-ecs-fail-${RUN}`;
  const family = await createService(dep, 1);
  process.env.BLACKTREE_DEPLOY_ECS_CONTAINER = "app";
  emu.ecs.failRolloutsOf("registry.example/app:broken");
  const failed = await run({ type: "deploy", deploymentId: dep, imageUrl: "registry.example/app:broken" });
  delete process.env.BLACKTREE_DEPLOY_ECS_CONTAINER;
  expect(failed.job.state).toBe("failed");
  expect(failed.attempts).toHaveLength(1);
  expect(failed.job.error.message).toBe(`the rollout of arn:aws:ecs:us-east-1:000000000000:task-definition/${family}:2 on service blacktree-${dep} failed: ECS deployment circuit breaker: tasks failed to start.`);
  expect(failed.logs.join("\n")).toMatch(new RegExp(`rolled service blacktree-${dep} back to .*task-definition/${family}:1`));
  const back = await waitFor(() => {
    const s = emu.ecs.serviceView(CLUSTER, `blacktree-${dep}`)!;
    return s.deployments.length === 1 && s.runningCount === 1 ? s : null;
  }, { message: "the service never settled back on the previous revision" });
  expect(back.taskDefinition).toMatch(new RegExp(`task-definition/${family}:1$`));
  expect(await imageOf(back.taskDefinition)).toBe("registry.example/app:v0");
}, 120_000);

test("a rollout that is not steady in time fails the deploy and goes back to the previous revision", async () => {
  const dep = `bt-h11b-ecs-slow-${RUN}`;
  const family = await createService(dep, 1);
  process.env.BLACKTREE_DEPLOY_ECS_CONTAINER = "app";
  process.env.BLACKTREE_DEPLOY_TIMEOUT_MS = "1000";
  emu.ecs.timing.rolloutMs = 60_000;
  try {
    const failed = await run({ type: "deploy", deploymentId: dep, imageUrl: "registry.example/app:slow" });
    expect(failed.job.state).toBe("failed");
    expect(failed.job.error.message).toMatch(new RegExp(`service blacktree-${dep} was not steady on .*${family}:2 within 1000 ms \\(0/1 task\\(s\\) running, rollout IN_PROGRESS\\)`));
    expect(emu.ecs.serviceView(CLUSTER, `blacktree-${dep}`)!.taskDefinition).toMatch(new RegExp(`${family}:1$`));
  } finally {
    emu.ecs.timing.rolloutMs = 300;
    process.env.BLACKTREE_DEPLOY_TIMEOUT_MS = "8000";
    delete process.env.BLACKTREE_DEPLOY_ECS_CONTAINER;
  }
}, 60_000);

test("a deploy to a service that does not exist is refused, naming it, without a retry", async () => {
  const dep = `bt-h11b-ecs-none-${RUN}`;
  const since = Date.now();
  const failed = await run({ type: "deploy", deploymentId: dep, imageUrl: "registry.example/app:v1", retry: { maxAttempts: 3, initialDelay: 100, retryOn: ["EXIT_NONZERO"] } });
  expect(failed.job.state).toBe("failed");
  expect(failed.attempts).toHaveLength(1);
  expect(failed.job.error.message).toBe(`ECS service blacktree-${dep} does not exist in cluster ${CLUSTER}: create it once (its network, load balancer and roles are the operator's), then deploy`);
  expect(emu.count("RegisterTaskDefinition", since)).toBe(0);
  // A stop of it has nothing to do.
  const stop = await run({ type: "stop", deploymentId: dep });
  expect(stop.job.state).toBe("succeeded");
  expect(stop.job.result.message).toBe(`ECS service blacktree-${dep} does not exist: nothing to stop`);
}, 60_000);
