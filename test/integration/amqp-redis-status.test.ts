import { randomUUID } from "node:crypto";
import Redis from "ioredis";
import { backendMessage, BackendClient, REDIS_URL, TEST_TOKEN } from "../support/amqp";
import { useInstantTarget } from "../support/instant";
import { startNode, TestNode } from "../support/orchestrator";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/** Redis pub/sub: a subscriber of one deployment's channel sees every transition of its job, in order. */
let node: TestNode;
let backend: BackendClient;
let subscriber: Redis;

let vhost: TestVhost;

beforeAll(async () => {
  vhost = createVhost("redis-status");
  backend = await BackendClient.connect("test-redis", vhost.url);
  subscriber = new Redis(REDIS_URL);
  node = await startNode({ env: { AMQP_URL: vhost.url, REDIS_URL }, configure: useInstantTarget });
}, 300_000);

afterAll(async () => {
  try {
    await node?.stop();
    subscriber?.disconnect();
    await backend?.close();
  } finally {
    vhost?.remove();
  }
});

test("every transition of a job reaches blacktree.status.<deploymentId> and blacktree.status, in order", async () => {
  const deploymentId = `redis-${randomUUID().slice(0, 8)}`;
  const perDeployment: any[] = [];
  const all: any[] = [];
  await subscriber.subscribe(`blacktree.status.${deploymentId}`, "blacktree.status");
  subscriber.on("message", (channel, text) => {
    const e = JSON.parse(text);
    if (channel === "blacktree.status") {
      if (e.deploymentId === deploymentId) all.push(e);
    } else perDeployment.push(e);
  });

  backend.publishJob(backendMessage(deploymentId));
  await backend.confirmed();
  await waitFor(() => perDeployment.some((e) => e.to === "succeeded") && all.some((e) => e.to === "succeeded"), { message: "final event on Redis" });

  const jobId = perDeployment[0].jobId;
  const history = (await node.rt.store.getEvents(jobId)).filter((e) => e.to !== null);
  const transitions = perDeployment.filter((e) => e.to !== null);
  expect(transitions.map((e) => [e.seq, e.from, e.to])).toEqual(history.map((e) => [e.seq, e.from, e.to]));
  expect(transitions.map((e) => e.to)).toEqual(["queued", "launching", "succeeded"]);
  expect(all.map((e) => e.seq)).toEqual(perDeployment.map((e) => e.seq));
  expect(transitions[0]).toMatchObject({ jobId, type: "build", deploymentId, kind: "job.created" });
  expect(JSON.stringify(perDeployment)).not.toContain(TEST_TOKEN);
});
