/**
 * Issue 14 — "why is it waiting": GET /api/jobs/:id of a job that has not started says what
 * holds it. Against real nodes (each with the limit under test), and — for the cases a
 * running engine makes too quick to observe — against the store alone.
 */
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { Limits } from "../../../lib/jobs/limits";
import { whyWaiting } from "../../../lib/jobs/waiting";
import { SecretBox } from "../../../lib/secrets/secret-box";
import { SqliteJobStore } from "../../../lib/store/sqlite/sqlite-store";
import { useControlledTarget, waitState } from "../../support/controlled";
import { newJob } from "../../support/jobs";
import { startNode, tempDir, TestNode } from "../../support/orchestrator";
import { waitFor } from "../../support/wait";

const run = randomUUID().slice(0, 8);

async function withNode(limits: Limits, fn: (node: TestNode) => Promise<void>) {
  const node = await startNode({
    configure: (c) => {
      useControlledTarget(c);
      c.limits = limits;
    },
  });
  try {
    await fn(node);
  } finally {
    await node.stop();
  }
}

/** Submits one after another, each created a millisecond after the one before (the claim's order is by creation). */
async function submitAll(node: TestNode, bodies: Array<Record<string, unknown>>): Promise<string[]> {
  const ids: string[] = [];
  let last = 0;
  for (const body of bodies) {
    await waitFor(() => Date.now() > last, { message: "clock" });
    const res = await node.http("POST", "/api/jobs", body);
    expect(res.status).toBe(202);
    ids.push(res.body.job.id);
    last = Date.parse(res.body.job.createdAt);
  }
  return ids;
}

const waitingOf = async (node: TestNode, id: string) => (await node.http("GET", `/api/jobs/${id}`)).body.waiting;

describe.each([
  ["global", { global: 2 }, "global"],
  ["type", { byType: { ctl: 2 } }, "ctl"],
  ["target", { byTarget: { controlled: 2 } }, "controlled"],
] as const)("a job held by the %s limit", (scope, limits, name) => {
  test("reports the limit, its use and the job's place among the jobs it admits next", async () => {
    await withNode(limits as Limits, async (node) => {
      const [a, b] = await submitAll(node, [0, 1].map((i) => ({ type: "ctl", deploymentId: `${scope}-${run}-run${i}` })));
      await waitState(node, a, ["running"]);
      await waitState(node, b, ["running"]);
      expect(await waitingOf(node, a)).toBeUndefined(); // only jobs that have not started wait
      const [c, d] = await submitAll(node, [0, 1].map((i) => ({ type: "ctl", deploymentId: `${scope}-${run}-wait${i}` })));
      const limit = { scope, name, max: 2, inUse: 2 };
      expect(await waitingOf(node, c)).toEqual({ reason: "limit", limit, position: 1 });
      expect(await waitingOf(node, d)).toEqual({ reason: "limit", limit, position: 2 });
      // A place frees: the first waiting job starts, the second moves up.
      await node.http("POST", `/api/jobs/${a}/cancel`, {});
      await waitState(node, c, ["launching", "running"]);
      await waitFor(async () => (await waitingOf(node, d))?.position === 1, { message: "the second never moved up" });
      for (const id of [b, c, d]) await node.http("POST", `/api/jobs/${id}/cancel`, {});
    });
  }, 60_000);
});

test("a job held by its concurrency key, and a retry in backoff", async () => {
  await withNode({}, async (node) => {
    const key = `key-${run}`;
    const [a, b, c] = await submitAll(node, [0, 1, 2].map(() => ({ type: "ctl", deploymentId: key })));
    await waitState(node, a, ["running"]);
    expect(await waitingOf(node, b)).toEqual({ reason: "limit", limit: { scope: "key", name: key, max: 1, inUse: 1 }, position: 1 });
    expect(await waitingOf(node, c)).toEqual({ reason: "limit", limit: { scope: "key", name: key, max: 1, inUse: 1 }, position: 2 });
    for (const id of [a, b, c]) await node.http("POST", `/api/jobs/${id}/cancel`, {});

    const [failing] = await submitAll(node, [{ type: "ctl", deploymentId: `backoff-${run}`, runMs: 0, exitCode: 3, retry: { maxAttempts: 2, initialDelay: 60_000, retryOn: ["EXIT_NONZERO"] } }]);
    const retrying = await waitState(node, failing, ["retrying"]);
    const waiting = await waitingOf(node, failing);
    expect(waiting).toEqual({ reason: "backoff", until: retrying.job.runAfter });
    expect(Date.parse(waiting.until)).toBeGreaterThan(Date.now() + 30_000);
    await node.http("POST", `/api/jobs/${failing}/cancel`, {});
  });
}, 60_000);

describe("from the store alone", () => {
  const secrets = new SecretBox(Buffer.alloc(32, 3));
  const T = 1_800_000_000_000;
  let store: SqliteJobStore;
  beforeEach(async () => {
    store = new SqliteJobStore({ file: path.join(tempDir(), "waiting.db"), secrets });
    await store.migrate();
  });
  afterEach(() => store.close());

  test("nothing holds it: next; a start time not reached: scheduled; another state: none", async () => {
    const { job } = await store.createJob(newJob("free", { type: "test", concurrencyKey: "k" }), T);
    expect(await whyWaiting(store, job, { global: 5, byType: { test: 1 } }, T)).toEqual({ reason: "next" });
    expect(await whyWaiting(store, job, {}, T)).toEqual({ reason: "next" });
    const { job: later } = await store.createJob(newJob("later", { type: "test", runAfter: T + 5000 }), T);
    expect(await whyWaiting(store, later, {}, T)).toEqual({ reason: "scheduled", until: new Date(T + 5000).toISOString() });
    const done = await store.transition("free", { from: "queued", to: "cancelled", now: T });
    expect(await whyWaiting(store, done!, {}, T)).toBeUndefined();
  });

  test("a limit with free places that the jobs before it take first holds it, with its place", async () => {
    // global 3, one in use: two free places; the jobs before take them, the third waits at place 3.
    await store.createJob(newJob("running", { type: "test" }), T);
    await store.claimJobs({ now: T, limits: {}, max: 1 });
    for (let i = 0; i < 3; i++) await store.createJob(newJob(`q${i}`, { type: "test" }), T + 1 + i);
    const third = (await store.getJob("q2"))!;
    const limits = { global: 3 };
    expect(await whyWaiting(store, (await store.getJob("q0"))!, limits, T + 10)).toEqual({ reason: "next" });
    expect(await whyWaiting(store, third, limits, T + 10)).toEqual({ reason: "limit", limit: { scope: "global", name: "global", max: 3, inUse: 1 }, position: 3 });
    // Priority goes first, as in the claim: a high-priority job is next.
    const { job: urgent } = await store.createJob(newJob("urgent", { type: "test", priority: 9 }), T + 20);
    expect(await whyWaiting(store, urgent, limits, T + 30)).toEqual({ reason: "next" });
  });
});
