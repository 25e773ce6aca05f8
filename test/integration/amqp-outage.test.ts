import { randomUUID } from "node:crypto";
import { AMQP_URL, BACKEND_RESULTS, BackendClient, rabbitmqctl } from "../support/amqp";
import { exclusive } from "../support/exclusive";
import { useInstantTarget } from "../support/instant";
import { countFinal, countStates, lastSeq } from "../support/outbox";
import { startNode, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/**
 * RabbitMQ refuses the orchestrator for a while (its user loses access to the vhost, its
 * connections are closed): jobs still come in over REST and finish, their events wait in
 * the outbox (the amqp cursor stands still) while the other sinks go on, /health says so,
 * and once access is back every result goes out, exactly once.
 */
const USER = "blacktree-outage-test";
const PASSWORD = "outage-test-pw";
let node: TestNode | undefined;
let release: (() => void) | undefined;
const clients: BackendClient[] = [];

beforeAll(async () => {
  release = await exclusive("amqp");
  try {
    rabbitmqctl("add_user", USER, PASSWORD);
  } catch {
    rabbitmqctl("change_password", USER, PASSWORD); // left by an earlier run
  }
  rabbitmqctl("set_permissions", "-p", "/", USER, ".*", ".*", ".*");
}, 300_000);

afterAll(async () => {
  try {
    await node?.stop();
    for (const c of clients) await c.close();
    rabbitmqctl("delete_user", USER);
  } finally {
    release?.();
  }
});

test("while RabbitMQ refuses us, events wait in the outbox; after it is back, each result goes out once", async () => {
  const backend = await BackendClient.connect("test-outage");
  clients.push(backend);
  await backend.purgeAll();
  const url = AMQP_URL.replace(/\/\/[^@]*@/, `//${USER}:${PASSWORD}@`);
  node = await startNode({ env: { AMQP_URL: url }, configure: useInstantTarget });
  const run = randomUUID().slice(0, 8);

  rabbitmqctl("clear_permissions", "-p", "/", USER);
  rabbitmqctl("close_all_connections", "outage test");
  await waitFor(async () => (await node!.http("GET", "/health")).status === 503, { message: "health reports the outage" });
  const health = (await node.http("GET", "/health")).body;
  expect(health.checks["amqp:blacktree-status"].ok).toBe(false);
  expect(JSON.stringify(health)).not.toContain(PASSWORD);

  const cursorBefore = await node.rt.store.getCursor("amqp");
  const ids = Array.from({ length: 20 }, (_, i) => `outage-${run}-${i}`);
  for (const id of ids) {
    const res = await node.http("POST", "/api/jobs", { deploymentId: id, repository: "o/r", createdAt: new Date().toISOString() });
    expect(res.status).toBe(202);
  }
  await waitFor(async () => countFinal(await countStates(node!.rt.store)) === ids.length, { message: "jobs finished during the outage" });
  // The Moleculer sink delivered everything; the AMQP one is held at its cursor.
  await waitFor(async () => (await node!.rt.store.getCursor("moleculer-events")) === (await lastSeq(node!.rt.store)), { message: "moleculer sink drained" });
  expect(await node.rt.store.getCursor("amqp")).toBe(cursorBefore);

  rabbitmqctl("set_permissions", "-p", "/", USER, ".*", ".*", ".*");
  await waitFor(async () => (await node!.rt.store.getCursor("amqp")) === (await lastSeq(node!.rt.store)), { timeout: 30_000, interval: 100, message: "amqp sink caught up after the outage" });
  expect((await node.http("GET", "/health")).status).toBe(200);

  const reader = await BackendClient.connect("test-outage-reader");
  clients.push(reader);
  const results = (await reader.drain(BACKEND_RESULTS)).map((m) => JSON.parse(m.body));
  expect(results.map((r) => r.deploymentId).sort()).toEqual([...ids].sort());
  expect(results.every((r) => r.success)).toBe(true);
}, 120_000);
