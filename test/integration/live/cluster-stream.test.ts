/**
 * Issue 14 — a gateway streams transitions committed on another node: a front node
 * (gateway, intake, validator) and a back node (dispatcher, lifecycle, status, targets) on
 * one PostgreSQL database over NATS. The front's tail polls only once a minute here, so the
 * events reach its streams through the `blacktree.store.changed` broadcast, read from the store.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { useControlledTarget } from "../../support/controlled";
import { authHeader, startNode, TestNode } from "../../support/orchestrator";
import { createDatabase, TestDatabase } from "../../support/postgres";
import { SseClient } from "../../support/sse";

let db: TestDatabase;
let front: TestNode;
let back: TestNode;

beforeAll(async () => {
  db = await createDatabase("h14a_stream");
  const shared = {
    DATABASE_URL: db.url,
    TRANSPORTER: process.env.TEST_TRANSPORTER ?? "nats://127.0.0.1:4222",
    NAMESPACE: `bt-h14a-${randomUUID().slice(0, 8)}`,
    BLACKTREE_SECRETS_KEY: randomBytes(32).toString("base64"),
    BLACKTREE_CALLBACK_SECRET: randomBytes(32).toString("hex"),
    BLACKTREE_API_KEY_PEPPER: randomBytes(32).toString("hex"),
  };
  back = await startNode({ configure: useControlledTarget, env: { ...shared, SERVICES: "dispatcher,lifecycle,status,targets" } });
  front = await startNode({ configure: useControlledTarget, env: { ...shared, SERVICES: "gateway,intake,validator", BLACKTREE_STREAM_POLL_MS: "60000" } });
}, 60_000);
afterAll(async () => {
  await front?.stop();
  await back?.stop();
  await db?.drop();
});

test("a job's stream and the operator stream on the front see every event the back node commits, in position order", async () => {
  const ops = await SseClient.open(`${front.url}/api/events?type=ctl`, authHeader("operator"));
  expect(ops.status).toBe(200);
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const res = await front.http("POST", "/api/jobs", { type: "ctl", deploymentId: `cluster-${i}`, runMs: 100 });
    expect(res.status).toBe(202);
    ids.push(res.body.job.id);
  }
  const started = Date.now();
  const streams = await Promise.all(ids.map((id) => SseClient.open(`${front.url}/api/jobs/${id}/events`, authHeader("admin"))));
  await Promise.all(streams.map((s) => s.waitFor((c) => c.ended, "a job stream never ended", 30_000)));
  // Well within the front's 60 s poll: woken by the back node's broadcasts.
  expect(Date.now() - started).toBeLessThan(20_000);
  for (const [i, s] of streams.entries()) {
    const stored = (await front.rt.store.getEvents(ids[i])).map((e) => e.seq);
    expect(s.events.map((m) => Number(m.id))).toEqual(stored);
    expect(JSON.parse(s.events[s.events.length - 1].data).to).toBe("succeeded");
  }
  const last = Math.max(...(await Promise.all(ids.map(async (id) => Math.max(...(await front.rt.store.getEvents(id)).map((e) => e.seq))))));
  await ops.waitFor((c) => c.events.some((m) => Number(m.id) >= last), "the operator stream never caught up", 30_000);
  ops.close();
  const seqs = ops.events.map((m) => Number(m.id));
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  expect(new Set(seqs).size).toBe(seqs.length);
  const mine = ops.events.map((m) => JSON.parse(m.data)).filter((e) => ids.includes(e.jobId));
  expect(mine.length).toBe((await Promise.all(ids.map((id) => front.rt.store.getEvents(id)))).flat().length);
}, 90_000);
