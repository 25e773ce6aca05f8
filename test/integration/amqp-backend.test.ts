import { randomUUID } from "node:crypto";
import type { Channel } from "amqplib";
import { BACKEND_RESULTS, backendMessage, BackendClient, REDIS_URL, TEST_TOKEN } from "../support/amqp";
import { CaptureLogger } from "../support/capture-logger";
import { useInstantTarget } from "../support/instant";
import { startNode, TestNode } from "../support/orchestrator";
import { lastSeq } from "../support/outbox";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * The NestJS backend's side of the wire, unchanged: it publishes DeploymentMessages (no
 * `type`, a token, `owner/repo`) and reads legacy results from its own queue.
 */
let node: TestNode;
let backend: BackendClient;
let statusWatch: Channel;
const logger = new CaptureLogger({ level: "debug" });
const results: any[] = [];
const statusEvents: any[] = [];
const run = randomUUID().slice(0, 8);

let vhost: TestVhost;

beforeAll(async () => {
  vhost = createVhost("backend");
  backend = await BackendClient.connect("test-backend", vhost.url);
  node = await startNode({ env: { AMQP_URL: vhost.url, REDIS_URL, LOG_LEVEL: "debug" }, configure: useInstantTarget, broker: { logger } });
  await backend.channel.consume(BACKEND_RESULTS, (m) => {
    if (!m) return;
    results.push(JSON.parse(m.content.toString("utf8")));
    backend.channel.ack(m);
  });
  statusWatch = await backend.watchStatus((e) => statusEvents.push(e));
}, 300_000);

afterAll(async () => {
  try {
    await node?.stop();
    await statusWatch?.close().catch(() => undefined);
    await backend?.close();
  } finally {
    vhost?.remove();
  }
});

const resultsFor = (id: string) => results.filter((r) => r.deploymentId === id);

describe("RabbitMQ intake and results, as the backend sees them", () => {
  test("each backend message gets exactly one legacy result; redeliveries make no second job", async () => {
    const ids = Array.from({ length: 5 }, (_, i) => `backend-${run}-${i}`);
    const messages = ids.map((id) => backendMessage(id));
    for (const m of messages) backend.publishJob(m);
    backend.publishJob(messages[0]); // the same message again: same job key
    await backend.confirmed();

    await waitFor(() => ids.every((id) => resultsFor(id).length >= 1), { timeout: 20_000, message: "results for every deployment" });
    // Quiet period measured by the outbox, not a sleep: every sink's cursor is at the end.
    await waitFor(async () => (await node.rt.store.getCursor("amqp")) === (await lastSeq(node.rt.store)), { message: "amqp sink drained" });

    for (const id of ids) {
      const mine = resultsFor(id);
      expect(mine).toHaveLength(1);
      expect(Object.keys(mine[0]).sort()).toEqual(["deploymentId", "error", "imageUrl", "logs", "success"]);
      expect(mine[0]).toMatchObject({ deploymentId: id, success: true, error: null, imageUrl: null });
      expect(mine[0].logs).toMatch(/instant worker/);
    }
    const jobs = (await node.http("GET", `/api/jobs?limit=500`)).body.items.filter((j: any) => ids.includes(j.deploymentId));
    expect(jobs).toHaveLength(5);
    for (const j of jobs) {
      expect(j.type).toBe("build");
      expect(j.source).toBe("amqp");
      expect(j.params.repository).toBe("https://github.com/blacktree-test/hello");
      expect(await node.rt.store.getSecrets(j.id)).toEqual({}); // wiped at the end
    }
  });

  test("a message failing validation ends as a rejected job and a failure result", async () => {
    const id = `backend-${run}-bad`;
    backend.publishJob(backendMessage(id, { branch: "--upload-pack=touch /tmp/x" }));
    await backend.confirmed();
    const [result] = await waitFor(() => (resultsFor(id).length ? resultsFor(id) : null), { message: "failure result" });
    expect(result).toEqual({ deploymentId: id, imageUrl: null, success: false, logs: "", error: expect.stringMatching(/branch/) });
    const job = (await node.http("GET", `/api/jobs?deploymentId=${id}`)).body.items[0];
    expect(job.state).toBe("rejected");
    expect(job.error.fields.map((f: any) => f.field)).toContain("branch");
    expect(job.params.token).toBeUndefined();
  });

  test("the token appears in no result, no api.status event, no log line", async () => {
    await waitFor(() => statusEvents.some((e) => e.deploymentId === `backend-${run}-bad`), { message: "status events arrived" });
    expect(statusEvents.length).toBeGreaterThan(10);
    expect(statusEvents.map((e) => e.to)).toEqual(expect.arrayContaining(["queued", "launching", "succeeded", "rejected"]));
    expect(JSON.stringify(results)).not.toContain(TEST_TOKEN);
    expect(JSON.stringify(statusEvents)).not.toContain(TEST_TOKEN);
    expect(logger.lines.length).toBeGreaterThan(20);
    expect(logger.lines.join("\n")).not.toContain(TEST_TOKEN);
    expect(logger.lines.join("\n")).not.toContain("guest:guest");
    expect(logger.lines.join("\n")).toMatch(/AMQP blacktree-intake connected to amqp:\/\/guest:\*\*\*@/);
  });

  test("/health reports RabbitMQ and Redis readiness; /metrics counts AMQP traffic", async () => {
    const health = await node.http("GET", "/health");
    expect(health.status).toBe(200);
    expect(health.body.checks).toMatchObject({ "amqp:blacktree-intake": { ok: true }, "amqp:blacktree-status": { ok: true }, redis: { ok: true } });
    const metrics = (await node.http("GET", "/metrics")).text;
    expect(metrics).toMatch(/blacktree_amqp_messages_acked_total\{queue="execute.queue"\} [1-9]/);
    expect(metrics).toMatch(/blacktree_amqp_publish_confirms_total\{routing_key="api.result"\} [1-9]/);
    expect(metrics).toMatch(/blacktree_amqp_connected\{connection="blacktree-status"\} 1/);
  });
});
