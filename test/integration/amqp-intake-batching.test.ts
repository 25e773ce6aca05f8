import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { EXECUTE_QUEUE } from "../../lib/amqp/topology";
import { amqpMetrics } from "../../lib/amqp/amqp-metrics";
import { blacktreeError } from "../../lib/errors";
import { backendMessage, BackendClient, BACKEND_RESULTS } from "../support/amqp";
import { useInstantTarget } from "../support/instant";
import { countStates, lastSeq, total } from "../support/outbox";
import { startNode, TestNode } from "../support/orchestrator";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * execute.queue intake under a burst: messages (up to AMQP_PREFETCH) are validated
 * concurrently and stored in arrival order; the store commits the writes of one event-loop
 * turn in one transaction, so a burst takes far fewer transactions than messages, and each
 * message is acked after its commit. A message whose handling fails is retried on its own.
 *
 * On the code before this change the first test failed: 300 messages made 300 separate
 * store transactions.
 */
const FAULTY_PLUGIN = path.join(__dirname, "../support/plugins/faulty-plugin.ts");
const DELAY_MS = 100;
let vhost: TestVhost | undefined;
let node: TestNode | undefined;
let backend: BackendClient | undefined;
const run = randomUUID().slice(0, 8);

beforeAll(async () => {
  vhost = createVhost("batching");
  backend = await BackendClient.connect("test-batching", vhost.url);
  node = await startNode({
    env: { AMQP_URL: vhost.url, AMQP_PREFETCH: "32", AMQP_REQUEUE_DELAY_MS: String(DELAY_MS), AMQP_MAX_REQUEUES: "3" },
    configure: (config) => {
      useInstantTarget(config);
      config.plugins.push({ use: FAULTY_PLUGIN } as (typeof config.plugins)[number]);
      // `faulty` jobs never launch here (limit 0): they stay queued, so supersession can be seen.
      config.limits.byType = { ...config.limits.byType, faulty: 0 };
      config.taskTypes.faulty = { coalesce: true };
    },
  });
}, 120_000);

afterAll(async () => {
  jest.restoreAllMocks();
  try {
    await node?.stop();
    await backend?.close();
  } finally {
    vhost?.remove();
    if (node) fs.rmSync(node.dataDir, { recursive: true, force: true });
  }
});

async function executeCounts() {
  const sum = async (c: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }) =>
    (await c.get()).values.filter((v) => v.labels.queue === EXECUTE_QUEUE).reduce((n, v) => n + v.value, 0);
  return { consumed: await sum(amqpMetrics.consumed), acked: await sum(amqpMetrics.acked), nacked: await sum(amqpMetrics.nacked) };
}

/** execute.queue empty and every delivered message settled. */
async function settled() {
  await waitFor(async () => {
    const c = await executeCounts();
    return (await backend!.messageCount(EXECUTE_QUEUE)) === 0 && c.consumed === c.acked + c.nacked;
  }, { timeout: 30_000, message: "execute.queue settled" });
}

describe("execute.queue intake batches", () => {
  test("300 messages (valid, invalid, one whose check() throws) are stored in far fewer transactions, and every one is acked", async () => {
    const store = node!.rt.store;
    // The commit in which each job first appears is the one that created it.
    const createdIn = new Map<string, number>();
    let commits = 0;
    const off = store.onCommit((change) => {
      commits += 1;
      for (const id of change.jobIds) if (!createdIn.has(id)) createdIn.set(id, commits);
    });
    const before = total(await countStates(store));
    const ids = Array.from({ length: 300 }, (_, i) => `batch-${run}-${i}`);
    ids.forEach((id, i) => backend!.publishJob(i % 50 === 7 ? backendMessage(id, { branch: "--upload-pack=x" }) : backendMessage(id), { messageId: id }));
    backend!.publishJob({ type: "faulty", deploymentId: `batch-${run}-faulty`, createdAt: new Date().toISOString() });
    await backend!.confirmed();

    await waitFor(async () => total(await countStates(store)) - before === 300, { timeout: 30_000, message: "300 jobs stored" });
    await waitFor(async () => (await store.listDeadLetters(500)).some((l) => l.body.includes(`batch-${run}-faulty`)), { timeout: 30_000, message: "the faulty message dead-lettered" });
    await settled();
    off();

    const creating = new Set(ids.map((id) => createdIn.get(id)));
    process.stdout.write(`amqp-intake-batching: 300 messages stored in ${creating.size} transactions\n`);
    expect(creating.has(undefined)).toBe(false);
    expect(creating.size).toBeLessThanOrEqual(300 / 4);
    const states = await countStates(store);
    expect(states.rejected).toBe(6);
    const counts = await executeCounts();
    expect(counts.nacked).toBe(0);
    // Every job's event went out: the backend gets one result per deployment.
    await waitFor(async () => (await store.getCursor("amqp")) === (await lastSeq(store)), { timeout: 30_000, message: "amqp sink drained" });
    const results = (await backend!.drain(BACKEND_RESULTS)).map((m) => JSON.parse(m.body));
    expect(new Set(results.filter((r) => r.deploymentId.startsWith(`batch-${run}-`)).map((r) => r.deploymentId)).size).toBe(300);
  }, 90_000);

  test("a store failure retries the message after the delay; every job is then stored once", async () => {
    const store = node!.rt.store;
    const real = store.createJob.bind(store);
    const attempts: Array<{ at: number; id: string }> = [];
    let failuresLeft = 1;
    const spy = jest.spyOn(store, "createJob").mockImplementation(async (job, now) => {
      attempts.push({ at: Date.now(), id: job.deploymentId ?? "" });
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        throw blacktreeError("STORE_UNAVAILABLE", "SQLite: database is locked");
      }
      return real(job, now);
    });
    const ids = Array.from({ length: 10 }, (_, i) => `storefail-${run}-${i}`);
    for (const id of ids) backend!.publishJob(backendMessage(id));
    await backend!.confirmed();
    await waitFor(async () => {
      const found = await Promise.all(ids.map(async (id) => (await store.listJobs({ deploymentId: id })).items.length));
      return found.every((n) => n === 1);
    }, { timeout: 20_000, message: "all 10 stored" });
    await settled();
    spy.mockRestore();
    const failed = attempts[0];
    const retried = attempts.filter((a) => a.id === failed.id);
    expect(retried.length).toBe(2);
    // The failed message came back only after the delay.
    expect(retried[1].at - failed.at).toBeGreaterThanOrEqual(DELAY_MS - 5);
    for (const id of ids) expect((await store.listJobs({ deploymentId: id })).items).toHaveLength(1);
  });

  test("coalescing holds for two jobs of one deployment that arrive together: the later supersedes the earlier", async () => {
    const deploymentId = `coalesce-${run}`;
    const [first, second] = [`older-${run}`, `newer-${run}`];
    backend!.publishJob({ type: "faulty", deploymentId, failTimes: 0, createdAt: new Date().toISOString() }, { messageId: first });
    backend!.publishJob({ type: "faulty", deploymentId, failTimes: 0, createdAt: new Date().toISOString() }, { messageId: second });
    await backend!.confirmed();
    const jobs = await waitFor(async () => {
      const items = (await node!.rt.store.listJobs({ deploymentId })).items;
      return items.length === 2 && items.some((j) => j.state === "cancelled") ? items : null;
    }, { timeout: 20_000, message: "the older job superseded" });
    const byId = new Map(jobs.map((j) => [j.id, j]));
    expect(byId.get(first)?.state).toBe("cancelled");
    expect(byId.get(second)?.state).toBe("queued");
    const history = await node!.rt.store.getEvents(first);
    expect(history.find((e) => e.to === "cancelled")?.data).toMatchObject({ reason: `superseded by job ${second}` });
  });
});
