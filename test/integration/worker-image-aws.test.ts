import fs from "node:fs";
import path from "node:path";
import { startAwsEmulator, useDummyAwsCredentials, type AwsEmulator } from "../support/aws-emulator";
import { useAwsTargets } from "../support/aws-node";
import { CaptureLogger } from "../support/capture-logger";
import { startNode, tempDir, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/**
 * Builds routed to fargate and ec2 (the AWS emulator): RunTask and RunInstances name the
 * worker image and the worker argv; the ECR token is fetched with GetAuthorizationToken
 * only when the worker asks for its secrets, and reaches the worker's answer only — never
 * the RunTask overrides, the user data, a log line or the store. The emulator does not run
 * workers, so the test plays the worker: it reads its callback from the launch and calls
 * the real gateway the way the build worker does.
 */
const WORKER_IMAGE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/blacktree/worker:1";
const REGISTRY = "000000000000.dkr.ecr.us-east-1.amazonaws.com";
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];
const logger = new CaptureLogger({ level: "debug" });
let emu: AwsEmulator;
let node: TestNode;
let repo: string;

beforeAll(async () => {
  useDummyAwsCredentials();
  // Workers "run" 4 s: time for the test to play the worker's calls.
  emu = await startAwsEmulator({ ecs: { defaultRunMs: 4_000 }, ec2: { defaultRunMs: 4_000 } });
  repo = tempDir("bt-h11a-aws-repo-");
  node = await startNode({
    broker: { logger },
    env: { LOG_LEVEL: "debug" },
    configure: (c) => {
      const registry = { url: REGISTRY, repositoryPrefix: "team/", ecr: true };
      useAwsTargets(c, emu, {
        fargate: { workerImage: WORKER_IMAGE, taskDefinitionsByImage: { [WORKER_IMAGE]: "blacktree-worker:3" }, registry },
        ec2: { workerImage: WORKER_IMAGE, workerSecurityOpt: ["seccomp=unconfined"], registry },
      });
      c.routing.byType.build = "fargate";
    },
  });
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await emu?.stop();
});

async function finished(id: string): Promise<any> {
  return waitFor(
    async () => {
      const r = await node.http("GET", `/api/jobs/${id}`);
      return FINAL.includes(r.body?.job?.state) ? r.body : null;
    },
    { timeout: 30_000, message: `job ${id} ended` },
  );
}

/** The worker's part: its one secrets fetch and a result, through the real gateway with its scoped token. */
async function playWorker(env: Record<string, string>): Promise<Record<string, string>> {
  const auth = { authorization: `Bearer ${env.BLACKTREE_CALLBACK_TOKEN}`, "content-type": "application/json" };
  const res = await fetch(`${env.BLACKTREE_CALLBACK_URL}/secrets`, { headers: auth });
  expect(res.status).toBe(200);
  const { secrets } = (await res.json()) as { secrets: Record<string, string> };
  const imageUrl = `${env.BLACKTREE_REGISTRY}/${env.BLACKTREE_REGISTRY_PREFIX}${env.BLACKTREE_IMAGE_TAG}@sha256:${"a".repeat(64)}`;
  const posted = await fetch(`${env.BLACKTREE_CALLBACK_URL}/result`, { method: "POST", headers: auth, body: JSON.stringify({ success: true, imageUrl, message: "pushed (played by the test)" }) });
  expect(posted.status).toBe(200);
  return secrets;
}

function expectNowhere(secret: string, places: Record<string, string>): void {
  for (const [where, text] of Object.entries(places)) expect({ where, leaked: text.includes(secret) }).toEqual({ where, leaked: false });
}

function storeFiles(): string {
  return (fs.readdirSync(node.dataDir, { recursive: true }) as string[])
    .map((f) => path.join(node.dataDir, f))
    .filter((p) => fs.statSync(p).isFile())
    .map((p) => fs.readFileSync(p).toString("latin1"))
    .join("\n");
}

test("fargate: RunTask runs the worker image's build-worker; the ECR token is fetched for the worker's secrets only and appears nowhere else", async () => {
  const res = await node.http("POST", "/api/jobs", { type: "build", deploymentId: "bt-h11a-ecs", repository: repo });
  expect(res.status).toBe(202);
  const id = res.body.job.id;
  const arn = await waitFor(() => emu.ecs.tasksTagged("blacktree.job", id)[0], { timeout: 15_000, message: "RunTask" });
  const task = emu.ecs.tasks.get(arn)!;
  expect(task.taskDefinition).toBe("blacktree-worker:3");
  expect(task.tags).toEqual(expect.arrayContaining([{ key: "blacktree.worker-image", value: WORKER_IMAGE }]));
  const container = (task.overrides as any).containerOverrides[0];
  expect(container.command).toEqual(["blacktree-worker", "build-worker"]);
  const env = Object.fromEntries(container.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
  expect(env).toMatchObject({ BLACKTREE_REGISTRY: REGISTRY, BLACKTREE_REGISTRY_PREFIX: "team/", BLACKTREE_SECRETS: "registryUsername,registryPassword" });
  expect(emu.count("GetAuthorizationToken")).toBe(0); // not at launch: only when the worker asks

  const secrets = await playWorker(env);
  expect(emu.ecr.issued).toHaveLength(1);
  const issued = emu.ecr.issued[0];
  expect(secrets).toEqual({ registryUsername: "AWS", registryPassword: issued.password });

  const done = await finished(id);
  expect(done.job.state).toBe("succeeded");
  expect(done.job.result.imageUrl).toMatch(new RegExp(`^${REGISTRY}/team/blacktree/bt-h11a-ecs:[a-z0-9-]+-1@sha256:a{64}$`));
  const logs = JSON.stringify((await node.http("GET", `/api/jobs/${id}/logs`)).body);
  expect(logger.lines.length).toBeGreaterThan(20); // the capture sees the node's (debug) log
  for (const secret of [issued.password, issued.authorizationToken]) {
    expectNowhere(secret, { overrides: JSON.stringify([...emu.ecs.tasks.values()].map((t) => t.overrides)), logs: logger.lines.join("\n"), jobLogs: logs, job: JSON.stringify(done), store: storeFiles() });
  }
}, 60_000);

test("ec2: RunInstances' user data runs the worker image (ECR login with the instance's role); the token never travels in it", async () => {
  const res = await node.http("POST", "/api/jobs", { type: "build", deploymentId: "bt-h11a-ec2", repository: repo, target: "ec2" });
  expect(res.status).toBe(202);
  const id = res.body.job.id;
  const instance = await waitFor(() => emu.ec2.instancesTagged("blacktree.job", id)[0], { timeout: 15_000, message: "RunInstances" });
  const userData = emu.ec2.userDataOf(instance.id);
  expect(userData).toContain(`'${WORKER_IMAGE}' 'blacktree-worker' 'build-worker'`);
  expect(userData).toContain(`aws ecr get-login-password --region 'us-east-1' | docker login --username AWS --password-stdin '${REGISTRY}'`);
  expect(userData).toContain("--security-opt 'seccomp=unconfined'");
  const env = Object.fromEntries([...userData.matchAll(/-e '([A-Z_]+)=([^']*)'/g)].map((m) => [m[1], m[2]]));
  expect(env.BLACKTREE_SECRETS).toBe("registryUsername,registryPassword");

  const before = emu.ecr.issued.length;
  const secrets = await playWorker(env);
  const issued = emu.ecr.issued[before];
  expect(secrets.registryPassword).toBe(issued.password);
  const done = await finished(id);
  expect(done.job.state).toBe("succeeded");
  for (const secret of [issued.password, issued.authorizationToken]) {
    expectNowhere(secret, { userData: [...emu.ec2.instances.values()].map((i) => emu.ec2.userDataOf(i.id)).join("\n"), logs: logger.lines.join("\n"), job: JSON.stringify(done), store: storeFiles() });
  }
}, 60_000);

test("ECR down at the secrets fetch: 503, the fetch is not spent, and the worker's next try gets the token", async () => {
  const res = await node.http("POST", "/api/jobs", { type: "build", deploymentId: "bt-h11a-ecr-down", repository: repo });
  const id = res.body.job.id;
  const arn = await waitFor(() => emu.ecs.tasksTagged("blacktree.job", id)[0], { timeout: 15_000, message: "RunTask" });
  const env = Object.fromEntries((emu.ecs.tasks.get(arn)!.overrides as any).containerOverrides[0].environment.map((e: { name: string; value: string }) => [e.name, e.value]));
  emu.inject({ action: "GetAuthorizationToken", kind: "throttle", times: 20 });
  const refused = await fetch(`${env.BLACKTREE_CALLBACK_URL}/secrets`, { headers: { authorization: `Bearer ${env.BLACKTREE_CALLBACK_TOKEN}` } });
  expect(refused.status).toBe(503);
  emu.clearFaults();
  const secrets = await playWorker(env);
  expect(secrets.registryPassword).toBe(emu.ecr.issued.at(-1)!.password);
  expect((await finished(id)).job.state).toBe("succeeded");
}, 60_000);
