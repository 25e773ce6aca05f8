import { randomUUID } from "node:crypto";
import fs from "node:fs";
import { BACKEND_RESULTS, BackendClient } from "../support/amqp";
import { useControlledTarget, waitForEntry, writeControl } from "../support/controlled";
import { useInstantTarget } from "../support/instant";
import { countFinal, countStates, lastSeq } from "../support/outbox";
import { startNode, TestNode } from "../support/orchestrator";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * RabbitMQ refuses the orchestrator for a while (its own user loses access to its own vhost,
 * that vhost's connections are closed — nobody else's): jobs from execute.queue that were
 * running finish meanwhile, REST jobs still come in and finish, their events wait in the
 * outbox (the amqp cursor stands still) while the other sinks go on, /health says so, and
 * once access is back every legacy result goes out, exactly once.
 */
let vhost: TestVhost | undefined;
let node: TestNode | undefined;
const clients: BackendClient[] = [];

beforeAll(() => {
  vhost = createVhost("outage", { user: true });
});

afterAll(async () => {
  try {
    await node?.stop();
    for (const c of clients) await c.close();
  } finally {
    vhost?.remove();
    if (node) fs.rmSync(node.dataDir, { recursive: true, force: true });
  }
});

test("while RabbitMQ refuses us, events wait in the outbox; after it is back, each result goes out once", async () => {
  const v = vhost!;
  const backend = await BackendClient.connect("test-outage", v.url);
  clients.push(backend);
  node = await startNode({
    env: { AMQP_URL: v.userUrl! },
    configure: (c) => {
      useInstantTarget(c);
      useControlledTarget(c);
    },
  });
  const run = randomUUID().slice(0, 8);

  // Backend jobs that run until told to end: they are running when access goes.
  const amqpIds = Array.from({ length: 10 }, (_, i) => `outage-amqp-${run}-${i}`);
  for (const id of amqpIds) backend.publishJob({ type: "ctl", deploymentId: id, createdAt: new Date().toISOString() }, { messageId: id });
  await backend.confirmed();
  for (const id of amqpIds) await waitForEntry(node.dataDir, (e) => e.op === "launched" && e.key === `${id}:1`, { timeout: 15_000 });

  v.revokeUser();
  v.closeConnections("outage test");
  await waitFor(async () => (await node!.http("GET", "/health")).status === 503, { message: "health reports the outage" });
  const health = (await node.http("GET", "/health")).body;
  expect(health.checks["amqp:blacktree-status"].ok).toBe(false);
  expect(JSON.stringify(health)).not.toContain(v.password!);

  const cursorBefore = await node.rt.store.getCursor("amqp");
  writeControl(node.dataDir, { keys: Object.fromEntries(amqpIds.map((id) => [`${id}:1`, { exitNow: 0 }])) });
  const restIds = Array.from({ length: 10 }, (_, i) => `outage-rest-${run}-${i}`);
  for (const id of restIds) {
    const res = await node.http("POST", "/api/jobs", { deploymentId: id, repository: "o/r", createdAt: new Date().toISOString() });
    expect(res.status).toBe(202);
  }
  await waitFor(async () => countFinal(await countStates(node!.rt.store)) === amqpIds.length + restIds.length, { message: "jobs finished during the outage" });
  // The Moleculer sink delivered everything; the AMQP one is held at its cursor.
  await waitFor(async () => (await node!.rt.store.getCursor("moleculer-events")) === (await lastSeq(node!.rt.store)), { message: "moleculer sink drained" });
  expect(await node.rt.store.getCursor("amqp")).toBe(cursorBefore);

  v.grantUser();
  await waitFor(async () => (await node!.rt.store.getCursor("amqp")) === (await lastSeq(node!.rt.store)), { timeout: 30_000, interval: 100, message: "amqp sink caught up after the outage" });
  expect((await node.http("GET", "/health")).status).toBe(200);

  const reader = await BackendClient.connect("test-outage-reader", v.url);
  clients.push(reader);
  const results = (await reader.drain(BACKEND_RESULTS)).map((m) => JSON.parse(m.body));
  expect(results.map((r) => r.deploymentId).sort()).toEqual([...amqpIds].sort());
  expect(results.every((r) => r.success)).toBe(true);
}, 120_000);
