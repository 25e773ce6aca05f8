import { randomUUID } from "node:crypto";
import { EXECUTE_QUEUE } from "../../lib/amqp/topology";
import { BackendClient } from "../support/amqp";
import { createVhost, TestVhost } from "../support/vhost";
import { useInstantTarget } from "../support/instant";
import { startNode, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";
import { amqpMetrics } from "../../lib/amqp/amqp-metrics";

async function settledCounts() {
  const sum = async (c: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }) =>
    (await c.get()).values.filter((v) => v.labels.queue === EXECUTE_QUEUE).reduce((n, v) => n + v.value, 0);
  return { consumed: await sum(amqpMetrics.consumed), acked: await sum(amqpMetrics.acked), nacked: await sum(amqpMetrics.nacked) };
}

/** Start-up without RabbitMQ fails clearly; stopping drains: in-flight messages finish and are acked, the rest stay queued. */
let vhost: TestVhost;
let backend: BackendClient | undefined;
let node: TestNode | undefined;

beforeAll(async () => {
  vhost = createVhost("drain");
}, 300_000);

afterAll(async () => {
  try {
    await node?.stop().catch(() => undefined);
    await backend?.close();
  } finally {
    vhost?.remove();
  }
});

test("start-up fails with AMQP_UNAVAILABLE when RabbitMQ is unreachable, without the password", async () => {
  const err = await startNode({ env: { AMQP_URL: "amqp://guest:s3cret-pass@127.0.0.1:1", AMQP_CONNECT_TIMEOUT_MS: "500" } }).then(
    () => null,
    (e) => e,
  );
  expect(err).toMatchObject({ type: "AMQP_UNAVAILABLE" });
  expect(err.message).toMatch(/amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/);
  expect(err.message).not.toContain("s3cret-pass");
});

test("stopping the node mid-stream: every message is either a stored job (acked) or still in execute.queue", async () => {
  backend = await BackendClient.connect("test-drain", vhost.url);
  node = await startNode({ env: { AMQP_URL: vhost.url, AMQP_PREFETCH: "16" }, configure: useInstantTarget });
  const run = randomUUID().slice(0, 8);
  const ids = Array.from({ length: 300 }, (_, i) => `drain-${run}-${i}`);
  // Each validation takes 100 ms: when the node stops, 16 messages are mid-way.
  for (const id of ids) backend.publishJob({ type: "sleepy", deploymentId: id, checkDelayMs: 100, createdAt: new Date().toISOString() });
  await backend.confirmed();
  await waitFor(async () => (await node!.rt.store.countByState()).reduce((n, r) => n + r.count, 0) >= 20, { message: "some jobs stored" });

  const store = node.rt.store;
  // Stop while messages are mid-way (delivered, not yet settled).
  const before = await waitFor(async () => {
    const c = await settledCounts();
    return c.consumed - c.acked - c.nacked >= 4 ? c : null;
  }, { interval: 5, message: "messages in flight" });
  const inFlight = before.consumed - before.acked - before.nacked;
  await node.broker.stop(); // the store stays open to count
  const after = await settledCounts();
  // Every message in flight when the stop began was finished and acked before the channel closed.
  expect(after.acked - before.acked).toBeGreaterThanOrEqual(inFlight);
  expect(after.nacked).toBe(0);
  const stored = (await store.countByState()).reduce((n, r) => n + r.count, 0);
  await store.close();
  node = undefined;
  const queued = (await backend.channel.checkQueue(EXECUTE_QUEUE)).messageCount;
  expect(stored).toBeGreaterThanOrEqual(20);
  expect(stored).toBeLessThan(300);
  // Nothing stored was left unacked (it would be back in the queue), nothing acked was lost.
  expect(stored + queued).toBe(300);
  await backend.channel.purgeQueue(EXECUTE_QUEUE);
});
