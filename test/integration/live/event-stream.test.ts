/**
 * Issue 14 — live events over Server-Sent Events, against a real node (broker, gateway,
 * SQLite, the controlled target): a job's stream and the operator stream resume with
 * Last-Event-ID without a gap or a duplicate, heartbeats arrive, stream tokens open only
 * their stream, and tenancy holds.
 */
import { randomUUID } from "node:crypto";
import { CaptureLogger } from "../../support/capture-logger";
import { useControlledTarget } from "../../support/controlled";
import { authHeader, startNode, TEST_KEYS, TestNode } from "../../support/orchestrator";
import { SseClient, SseMessage } from "../../support/sse";
import { waitFor } from "../../support/wait";

let node: TestNode;
const logger = new CaptureLogger({ level: "info" });
const run = randomUUID().slice(0, 8);
const alice = authHeader("submitter");
const bob = authHeader("submitter2");
const operator = authHeader("operator");

beforeAll(async () => {
  node = await startNode({
    configure: (c) => {
      useControlledTarget(c);
      c.limits = { global: 50 };
    },
    env: { BLACKTREE_STREAM_HEARTBEAT_MS: "150", LOG_LEVEL: "info" },
    broker: { logger },
  });
});
afterAll(async () => {
  await node?.stop();
});

/** Opens a stream of the node: with the admin key unless `headers` carry `authorization` ("" sends none). */
const sse = (path: string, headers: Record<string, string> = {}) => {
  const given = "authorization" in headers ? { ...headers } : { ...authHeader("admin"), ...headers };
  if (given.authorization === "") delete given.authorization;
  return SseClient.open(node.url + path, given);
};
const stored = async (id: string) => (await node.rt.store.getEvents(id)).map((e) => e.seq);
const ids = (messages: SseMessage[]) => messages.filter((m) => m.event === "job").map((m) => Number(m.id));
const submit = async (body: Record<string, unknown>, headers = authHeader("admin")) => {
  const res = await node.http("POST", "/api/jobs", body, headers);
  if (res.status !== 202) throw new Error(`submit: ${res.status} ${res.text}`);
  return res.body.job.id as string;
};

describe("a job's stream", () => {
  test("100 jobs, each client disconnects mid-job and resumes with Last-Event-ID: exactly the stored events, in order, once", async () => {
    const jobs = await Promise.all(Array.from({ length: 100 }, (_, i) => submit({ type: "ctl", deploymentId: `sse-${run}-${i}`, runMs: 200 + (i % 5) * 100 })));
    const results = await Promise.all(
      jobs.map(async (id, i) => {
        const first = await sse(`/api/jobs/${id}/events`);
        expect(first.status).toBe(200);
        expect(first.contentType).toMatch(/^text\/event-stream/);
        // Leave after 1–3 events (mid-job), some with a pause so that events happen meanwhile.
        const leaveAfter = 1 + (i % 3);
        await first.waitFor((c) => c.events.length >= leaveAfter || c.ended, `job ${id}: first events`);
        first.close();
        await first.done;
        const seen = first.events.slice(0, leaveAfter);
        if (i % 2) await new Promise((r) => setTimeout(r, 100 + (i % 4) * 100));
        // Half resume with the header, half with the query parameter (EventSource cannot set headers).
        const last = seen[seen.length - 1]!.id!;
        const second = i % 4 < 2 ? await sse(`/api/jobs/${id}/events`, { "last-event-id": last }) : await sse(`/api/jobs/${id}/events?lastEventId=${last}`);
        await second.waitFor((c) => c.ended, `job ${id}: the stream never ended`, 60_000);
        await second.done;
        expect(second.closedByServer).toBe(true);
        return { id, got: [...ids(seen), ...ids(second.messages)], messages: [...seen, ...second.messages] };
      }),
    );
    for (const { id, got, messages } of results) {
      expect(got).toEqual(await stored(id));
      const data = messages.filter((m) => m.event === "job").map((m) => JSON.parse(m.data));
      // The same view as GET /api/jobs/:id history.
      expect(data).toEqual((await node.http("GET", `/api/jobs/${id}`)).body.history);
      expect(data[data.length - 1].to).toBe("succeeded");
    }
  }, 120_000);

  test("a stream opened after the job ended replays its history and ends; one resumed at the end only ends", async () => {
    const id = await submit({ type: "ctl", deploymentId: `late-${run}`, runMs: 0 });
    await waitFor(async () => (await node.rt.store.getJob(id))?.state === "succeeded", { message: "job never succeeded" });
    const all = await sse(`/api/jobs/${id}/events`);
    await all.done;
    expect(ids(all.messages)).toEqual(await stored(id));
    expect(all.messages[all.messages.length - 1]).toMatchObject({ event: "end", data: "{}" });
    const tail = await sse(`/api/jobs/${id}/events`, { "last-event-id": all.events[all.events.length - 1]!.id! });
    await tail.done;
    expect(tail.messages.map((m) => m.event)).toEqual(["end"]);
  });

  test("heartbeats arrive on a quiet stream", async () => {
    const id = await submit({ type: "ctl", deploymentId: `hb-${run}` });
    const c = await sse(`/api/jobs/${id}/events`);
    await c.waitFor((x) => x.comments.filter((t) => t === "heartbeat").length >= 2, "no heartbeats");
    c.close();
    await node.http("POST", `/api/jobs/${id}/cancel`, {});
  });

  test("a bad Last-Event-ID is 422; an unknown job is 404", async () => {
    const id = await submit({ type: "ctl", deploymentId: `bad-${run}`, runMs: 0 });
    const bad = await sse(`/api/jobs/${id}/events`, { "last-event-id": "abc" });
    expect(bad.status).toBe(422);
    expect(bad.errorBody.error.type).toBe("VALIDATION_FAILED");
    expect((await sse(`/api/jobs/job_nope/events`)).status).toBe(404);
  });
});

describe("the operator stream", () => {
  test("every job's events, filtered, resumed with Last-Event-ID: exactly the outbox, in order, once", async () => {
    const deployment = `ops-${run}`;
    const first = await sse(`/api/events?type=ctl`, operator);
    expect(first.status).toBe(200);
    const filtered = await sse(`/api/events?deploymentId=${deployment}-3&state=succeeded`, operator);
    const jobs = await Promise.all(Array.from({ length: 30 }, (_, i) => submit({ type: "ctl", deploymentId: `${deployment}-${i}`, runMs: 100 + (i % 3) * 100 })));
    await first.waitFor((c) => c.events.length >= 40, "operator stream: first events");
    first.close();
    await first.done;
    const last = first.events[first.events.length - 1]!.id!;
    const second = await sse(`/api/events?type=ctl`, { ...operator, "last-event-id": last });
    await waitFor(async () => (await Promise.all(jobs.map((id) => node.rt.store.getJob(id)))).every((j) => j?.state === "succeeded"), { message: "jobs never succeeded", timeout: 30_000 });
    const head = await node.rt.store.lastEventSeq();
    await second.waitFor((c) => c.events.length > 0 && Number(c.events[c.events.length - 1]!.id) >= head, "operator stream never caught up");
    second.close();
    // A stream without Last-Event-ID starts at the gateway tail's position: compare from its first event on.
    const start = Number(first.events[0]!.id) - 1;
    const outbox = (await node.rt.store.readEvents(start, 100_000)).filter((e) => e.seq <= head);
    for (const id of jobs) expect(outbox.filter((e) => e.jobId === id).map((e) => e.seq)).toEqual(await stored(id));
    expect([...ids(first.events), ...ids(second.events)]).toEqual(outbox.map((e) => e.seq));
    // Filters: deployment and the state an event moved to.
    await filtered.waitFor((c) => c.events.length >= 1, "filtered stream");
    filtered.close();
    expect(filtered.events.map((m) => JSON.parse(m.data))).toEqual([expect.objectContaining({ jobId: jobs[3], to: "succeeded" })]);
  }, 60_000);

  test("the operator stream needs the operator role", async () => {
    const res = await sse(`/api/events`, alice);
    expect(res.status).toBe(403);
  });
});

describe("tenancy and stream tokens", () => {
  test("another submitter cannot stream someone else's job (404), nor get a token for it", async () => {
    const id = await submit({ type: "ctl", deploymentId: `own-${run}`, runMs: 0 }, alice);
    expect((await sse(`/api/jobs/${id}/events`, bob)).status).toBe(404);
    expect((await sse(`/api/jobs/${id}/logs?follow=1`, bob)).status).toBe(404);
    expect((await node.http("POST", "/api/stream-tokens", { jobId: id }, bob)).status).toBe(404);
    const own = await sse(`/api/jobs/${id}/events`, alice);
    expect(own.status).toBe(200);
    await own.done;
    expect(ids(own.messages)).toEqual(await stored(id));
  });

  test("a job's stream token opens that job's streams only, on the stream routes only; it expires; an API key in the URL is refused", async () => {
    const id = await submit({ type: "ctl", deploymentId: `tok-${run}`, runMs: 0 }, alice);
    const other = await submit({ type: "ctl", deploymentId: `tok2-${run}`, runMs: 0 }, alice);
    const issued = await node.http("POST", "/api/stream-tokens", { jobId: id }, alice);
    expect(issued.status).toBe(200);
    const { token, expiresAt } = issued.body;
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(50_000);
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(60_000);
    const q = `token=${encodeURIComponent(token)}`;

    const ok = await sse(`/api/jobs/${id}/events?${q}`, { authorization: "" });
    expect(ok.status).toBe(200);
    await ok.done;
    expect(ids(ok.messages)).toEqual(await stored(id));
    const logs = await sse(`/api/jobs/${id}/logs?follow=1&${q}`, { authorization: "" });
    expect(logs.status).toBe(200);
    logs.close();

    const status = async (path: string, method = "GET") => (await node.http(method, path, method === "POST" ? {} : undefined, { authorization: "" })).status;
    expect(await status(`/api/jobs/${other}/events?${q}`)).toBe(403); // another job
    expect(await status(`/api/events?${q}`)).toBe(403); // the operator stream
    expect(await status(`/api/jobs/${id}?${q}`)).toBe(401); // not a stream route
    expect(await status(`/api/jobs/${id}/logs?${q}`)).toBe(401); // the JSON logs, not the stream
    expect(await status(`/api/jobs?${q}`)).toBe(401);
    expect(await status(`/api/stream-tokens?${q}`, "POST")).toBe(401);
    expect(await status(`/api/jobs/${id}/cancel?${q}`, "POST")).toBe(401);
    expect(await status(`/metrics?${q}`)).toBe(401);

    // Expired: issued by this node's own issuer, 61 s ago.
    const stale = node.rt.streamTokens.issue({ kind: "job", jobId: id }, { name: "alice", role: "submitter" }, Date.now() - 61_000);
    expect(await status(`/api/jobs/${id}/events?token=${encodeURIComponent(stale.token)}`)).toBe(401);
    // A forged one (payload changed) and an API key in any query parameter.
    const [p, payload, sig] = token.split(".");
    const forged = `${p}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, "base64url").toString()), j: other })).toString("base64url")}.${sig}`;
    expect(await status(`/api/jobs/${other}/events?token=${encodeURIComponent(forged)}`)).toBe(401);
    for (const param of ["token", "apiKey", "api_key", "key", "access_token"]) {
      expect(await status(`/api/jobs/${id}/events?${param}=${TEST_KEYS.admin}`)).toBe(401);
    }
  });

  test("the operator stream token: operators only; it opens /api/events and no job's stream", async () => {
    expect((await node.http("POST", "/api/stream-tokens", { scope: "events" }, alice)).status).toBe(403);
    expect((await node.http("POST", "/api/stream-tokens", { scope: "everything" }, operator)).status).toBe(422);
    expect((await node.http("POST", "/api/stream-tokens", { jobId: "x", extra: 1 }, operator)).status).toBe(422);
    const { token } = (await node.http("POST", "/api/stream-tokens", { scope: "events" }, operator)).body;
    const c = await sse(`/api/events?token=${encodeURIComponent(token)}`, { authorization: "" });
    expect(c.status).toBe(200);
    c.close();
    const id = await submit({ type: "ctl", deploymentId: `optok-${run}`, runMs: 0 });
    expect((await node.http("GET", `/api/jobs/${id}/events?token=${encodeURIComponent(token)}`, undefined, { authorization: "" })).status).toBe(403);
  });

  test("no stream token reaches the logs: request lines show it redacted", async () => {
    const id = await submit({ type: "ctl", deploymentId: `log-${run}`, runMs: 0 }, alice);
    const { token } = (await node.http("POST", "/api/stream-tokens", { jobId: id }, alice)).body;
    const c = await sse(`/api/jobs/${id}/events?token=${encodeURIComponent(token)}`, { authorization: "" });
    await c.done;
    await node.http("GET", `/api/jobs/${id}?token=${encodeURIComponent(token)}`, undefined, { authorization: "" });
    const text = logger.lines.join("\n");
    expect(text).toContain(`/api/jobs/${id}/events?token=[redacted]`);
    expect(text).not.toContain(token.split(".")[2]);
    expect(text).not.toContain(token.split(".")[1]);
  });
});

describe("connections", () => {
  test("/metrics counts open stream connections", async () => {
    const id = await submit({ type: "ctl", deploymentId: `conn-${run}` });
    const open = await Promise.all([1, 2, 3].map(() => sse(`/api/jobs/${id}/events`)));
    const gauge = async () => Number(/blacktree_stream_connections\{stream="job"\} (\d+)/.exec((await node.http("GET", "/metrics")).text)?.[1] ?? 0);
    await waitFor(async () => (await gauge()) >= 3, { message: "gauge never counted 3" });
    for (const c of open) c.close();
    await waitFor(async () => (await gauge()) === 0, { message: "gauge never went back to 0" });
    await node.http("POST", `/api/jobs/${id}/cancel`, {});
  });
});
