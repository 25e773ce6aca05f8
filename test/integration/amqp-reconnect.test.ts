import fs from "node:fs";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { BACKEND_RESULTS, backendMessage, BackendClient } from "../support/amqp";
import { useInstantTarget } from "../support/instant";
import { countFinal, countStates, lastSeq, total } from "../support/outbox";
import { startNode, TestNode } from "../support/orchestrator";
import { LAUNCH_LOG } from "../support/plugins/instant";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * 1,000 backend jobs while RabbitMQ drops every connection of the test's vhost twice (`rabbitmqctl
 * close_all_connections -p <vhost>`): each job is stored once, launched once, and gets exactly one
 * legacy result. The results are counted as they lie in the backend's queue, undeduplicated.
 */
const JOBS = 1000;
let node: TestNode;
const clients: BackendClient[] = [];

let vhost: TestVhost;

beforeAll(async () => {
  vhost = createVhost("reconnect");
}, 300_000);

afterAll(async () => {
  try {
    await node?.stop();
    for (const c of clients) await c.close();
  } finally {
    vhost?.remove();
    if (node) fs.rmSync(node.dataDir, { recursive: true, force: true });
  }
});

test("1,000 jobs through two forced reconnects: every job stored once, one result each", async () => {
  const run = randomUUID().slice(0, 8);
  const publisher = await BackendClient.connect("test-publisher", vhost.url);
  clients.push(publisher);
  node = await startNode({ env: { AMQP_URL: vhost.url, AMQP_REQUEUE_DELAY_MS: "200" }, configure: useInstantTarget });

  const started = Date.now();
  const ids = Array.from({ length: JOBS }, (_, i) => `reconnect-${run}-${i}`);
  for (const id of ids) publisher.publishJob(backendMessage(id));
  await publisher.confirmed();

  // First drop while the intake is busy, second while results are going out.
  await waitFor(async () => total(await countStates(node.rt.store)) >= 150, { timeout: 30_000, message: "150 jobs stored" });
  vhost.closeConnections("reconnect test");
  await waitFor(async () => countFinal(await countStates(node.rt.store)) >= 600, { timeout: 60_000, message: "600 jobs final" });
  vhost.closeConnections("reconnect test");

  await waitFor(async () => countFinal(await countStates(node.rt.store)) === JOBS, { timeout: 60_000, interval: 100, message: "all jobs final" });
  await waitFor(async () => (await node.rt.store.getCursor("amqp")) === (await lastSeq(node.rt.store)), { timeout: 30_000, interval: 100, message: "amqp sink drained" });
  const elapsed = Date.now() - started;

  // Stored exactly once each.
  const states = await countStates(node.rt.store);
  expect(states).toEqual({ succeeded: JOBS });
  for (const id of ids.filter((_, i) => i % 97 === 0)) expect((await node.rt.store.listJobs({ deploymentId: id })).items).toHaveLength(1);
  // Launched exactly once each (the instant target logs every launch key).
  const launches = fs.readFileSync(path.join(node.dataDir, LAUNCH_LOG), "utf8").trim().split("\n");
  expect(launches).toHaveLength(JOBS);
  expect(new Set(launches).size).toBe(JOBS);

  // Exactly one result per deployment in the backend's queue, counted as they lie there.
  const reader = await BackendClient.connect("test-reader", vhost.url);
  clients.push(reader);
  const results = (await reader.drain(BACKEND_RESULTS)).map((m) => JSON.parse(m.body));
  const perDeployment = new Map<string, number>();
  for (const r of results) perDeployment.set(r.deploymentId, (perDeployment.get(r.deploymentId) ?? 0) + 1);
  const duplicates = [...perDeployment].filter(([, n]) => n > 1);
  const missing = ids.filter((id) => !perDeployment.has(id));
  const metrics = (await node.http("GET", "/metrics")).text;
  const redelivered = Number(/blacktree_amqp_messages_consumed_total\{queue="execute.queue",redelivered="true"\} (\d+)/.exec(metrics)?.[1] ?? 0);
  const skipped = Number(/blacktree_amqp_results_already_delivered_total (\d+)/.exec(metrics)?.[1] ?? 0);
  // Figures for the record (the report quotes them).
  process.stdout.write(`amqp-reconnect: ${JOBS} jobs in ${elapsed} ms; execute.queue redeliveries ${redelivered}; in-doubt results found routed and not resent ${skipped}\n`);
  expect({ duplicates, missing }).toEqual({ duplicates: [], missing: [] });
  expect(results).toHaveLength(JOBS);
  expect(results.every((r) => r.success === true)).toBe(true);
});
