import { randomUUID } from "node:crypto";
import { DEAD_LETTER_QUEUE, EXECUTE_QUEUE } from "../../lib/amqp/topology";
import { BACKEND_RESULTS, backendMessage, BackendClient, TEST_TOKEN } from "../support/amqp";
import { useInstantTarget } from "../support/instant";
import { lastSeq } from "../support/outbox";
import { startNode, TestNode } from "../support/orchestrator";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/** Poison and invalid messages: dead-lettered once or rejected with reasons, never looped. */
let node: TestNode;
let backend: BackendClient;
const run = randomUUID().slice(0, 8);

let vhost: TestVhost;

beforeAll(async () => {
  vhost = createVhost("bad-messages");
  backend = await BackendClient.connect("test-bad-messages", vhost.url);
  node = await startNode({ env: { AMQP_URL: vhost.url, AMQP_MAX_MESSAGE_BYTES: "4096" }, configure: useInstantTarget });
}, 300_000);

afterAll(async () => {
  try {
    await node?.stop();
    await backend?.close();
  } finally {
    vhost?.remove();
  }
});

/** Every delivered message acked (acks come after the DLQ publish) and every event sent. */
async function settled() {
  await waitFor(async () => (await backend.channel.checkQueue(EXECUTE_QUEUE)).messageCount === 0 && (await acked()) === (await consumed(false)) + (await consumed(true)), { message: "execute.queue handled" });
  await waitFor(async () => (await node.rt.store.getCursor("amqp")) === (await lastSeq(node.rt.store)), { message: "amqp sink drained" });
}

const acked = async () => Number(/blacktree_amqp_messages_acked_total\{queue="execute.queue"\} (\d+)/.exec((await node.http("GET", "/metrics")).text)?.[1] ?? 0);
const consumed = async (redelivered: boolean) =>
  Number(new RegExp(`blacktree_amqp_messages_consumed_total\\{queue="execute.queue",redelivered="${redelivered}"\\} (\\d+)`).exec((await node.http("GET", "/metrics")).text)?.[1] ?? 0);

describe("bad messages on execute.queue", () => {
  test("a poison message (not JSON) is dead-lettered once, with its reason, and never redelivered", async () => {
    backend.publishJob(`{"deploymentId":"poison-${run}","token":"${TEST_TOKEN}", oops`);
    await backend.confirmed();
    const letters = await waitFor(async () => {
      const r = await node.http("GET", "/api/dead-letters");
      return r.body.items.length >= 1 ? r.body.items : null;
    }, { message: "dead letter stored" });
    await settled();
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ reason: "NOT_JSON", source: "amqp:execute.queue", replayCount: 0 });
    // It does not parse, so it cannot be redacted: not kept, only its size and hash.
    expect(letters[0].body).toBeNull();
    expect(letters[0].properties).toMatchObject({ bodyKept: false, bodyBytes: expect.any(Number), bodySha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(letters)).not.toContain(TEST_TOKEN);

    const dlq = await backend.drain(DEAD_LETTER_QUEUE);
    expect(dlq).toHaveLength(1);
    expect(dlq[0].headers["x-blacktree-reason"]).toBe("NOT_JSON");
    expect(dlq[0].body).not.toContain(TEST_TOKEN);
    expect(await consumed(true)).toBe(0);
    expect(await consumed(false)).toBe(1);
  });

  test("not an object, too large, and invalid without a deploymentId are dead-lettered with their reasons", async () => {
    backend.publishJob("[1,2,3]");
    backend.publishJob(JSON.stringify({ ...backendMessage(`big-${run}`), pad: "x".repeat(5000) }));
    backend.publishJob({ repository: "a/b", token: TEST_TOKEN });
    await backend.confirmed();
    await waitFor(async () => (await node.http("GET", "/api/dead-letters")).body.items.length === 4, { message: "three more dead letters" });
    await settled();
    const reasons = (await backend.drain(DEAD_LETTER_QUEUE)).map((m) => m.headers["x-blacktree-reason"]).sort();
    expect(reasons).toEqual(["NOT_AN_OBJECT", "NO_DEPLOYMENT_ID", "TOO_LARGE"]);
    const stored = (await node.http("GET", "/api/dead-letters")).body.items;
    expect(JSON.stringify(stored)).not.toContain(TEST_TOKEN);
    expect(await consumed(true)).toBe(0);
  });

  test("100 invalid messages → 100 rejected jobs with reasons and 100 failure results", async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `invalid-${run}-${i}`);
    for (const id of ids) backend.publishJob(backendMessage(id, { repository: undefined, autoDeploy: "perhaps" }));
    await backend.confirmed();
    await waitFor(async () => (await node.rt.store.countByState()).find((r) => r.state === "rejected")?.count === 100, { message: "100 rejected jobs" });
    await settled();
    const results = (await backend.drain(BACKEND_RESULTS)).map((m) => JSON.parse(m.body));
    expect(results).toHaveLength(100);
    expect(new Set(results.map((r) => r.deploymentId))).toEqual(new Set(ids));
    for (const r of results) expect(r).toEqual({ deploymentId: expect.any(String), imageUrl: null, success: false, logs: "", error: expect.stringMatching(/repository.*autoDeploy|autoDeploy.*repository/) });
    const job = (await node.http("GET", `/api/jobs?deploymentId=${ids[0]}`)).body.items[0];
    expect(job).toMatchObject({ state: "rejected", source: "amqp", error: { type: "VALIDATION_FAILED" } });
    expect(job.error.fields.map((f: any) => f.field).sort()).toEqual(["autoDeploy", "repository"]);
    expect(job.params.token).toBeUndefined();
    expect(await node.rt.store.getSecrets(job.id)).toEqual({});
    expect(await consumed(true)).toBe(0);
  });

  test("a dead letter can be replayed to execute.queue", async () => {
    const [letter] = (await node.http("GET", "/api/dead-letters")).body.items.filter((l: any) => l.reason === "NO_DEPLOYMENT_ID");
    const replay = await node.http("POST", `/api/dead-letters/${letter.id}/replay`);
    expect(replay.status).toBe(200);
    expect(replay.body.deadLetter).toMatchObject({ id: letter.id, replayCount: 1 });
    // Still invalid: it comes back to the DLQ once, not in a loop.
    const again = await waitFor(async () => {
      const m = await backend.drain(DEAD_LETTER_QUEUE);
      return m.length ? m : null;
    }, { message: "replayed letter dead-lettered again" });
    await settled();
    expect(again).toHaveLength(1);
    expect((await node.http("POST", "/api/dead-letters/nope/replay")).status).toBe(404);
  });
});
