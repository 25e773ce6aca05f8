/**
 * Issue 14 — `GET /api/jobs/:id/logs?follow=1` streams a job's log lines as its worker posts
 * them (the test plays the worker of the controlled target with the callback token its
 * launch carried), resumes by log position, ends when the job is final; a client that stops
 * reading is cut, not buffered for.
 */
import http from "node:http";
import { randomUUID } from "node:crypto";
import { entriesFor, readJournal, useControlledTarget, waitForEntry, writeControl } from "../../support/controlled";
import { authHeader, startNode, TestNode } from "../../support/orchestrator";
import { SseClient } from "../../support/sse";
import { waitFor } from "../../support/wait";

const BUFFER_BYTES = 65_536;
let node: TestNode;
const run = randomUUID().slice(0, 8);

beforeAll(async () => {
  // The shared poll is out of reach here: lines must reach followers through the gateway's own kick.
  node = await startNode({ configure: useControlledTarget, env: { BLACKTREE_STREAM_BUFFER_BYTES: String(BUFFER_BYTES), BLACKTREE_STREAM_POLL_MS: "600000" } });
});
afterAll(async () => {
  await node?.stop();
});

/** Submits a `ctl` job that runs until told to exit; returns its id and a `post(lines)` that plays its worker. */
async function runningJob(name: string) {
  const res = await node.http("POST", "/api/jobs", { type: "ctl", deploymentId: `${name}-${run}` });
  const id = res.body.job.id as string;
  const key = `${id}:1`;
  await waitForEntry(node.dataDir, (e) => e.op === "launched" && e.key === key);
  const launched = entriesFor(readJournal(node.dataDir), key, "launched")[0] as unknown as { callbackUrl: string; callbackToken: string };
  const post = async (lines: string[]) => {
    const r = await fetch(`${launched.callbackUrl}/log`, { method: "POST", headers: { authorization: `Bearer ${launched.callbackToken}`, "content-type": "application/json" }, body: JSON.stringify({ lines }) });
    await r.text();
    expect(r.status).toBe(200);
  };
  return { id, key, post };
}

const lines = (c: SseClient) => c.events.map((m) => JSON.parse(m.data) as { attempt: number; line: string });
const metric = async (name: string, stream: string) => Number(new RegExp(`${name}\\{stream="${stream}"\\} (\\d+)`).exec((await node.http("GET", "/metrics")).text)?.[1] ?? 0);

test("lines arrive as the worker posts them; a reconnect with Last-Event-ID gets exactly the ones it missed; the stream ends with the job", async () => {
  const { id, key, post } = await runningJob("follow");
  await post(["one", "two"]);
  const first = await SseClient.open(`${node.url}/api/jobs/${id}/logs?follow=1`, authHeader("admin"));
  expect(first.status).toBe(200);
  expect(first.contentType).toMatch(/^text\/event-stream/);
  await first.waitFor((c) => c.events.length === 2, "the lines so far");
  await post(["three", "four\nfive"]);
  await first.waitFor((c) => c.events.length === 5, "the new lines");
  expect(first.events.map((m) => m.id)).toEqual(["1:1", "1:2", "1:3", "1:4", "1:5"]);
  first.close();
  await first.done;

  await post(["six", "seven"]);
  const second = await SseClient.open(`${node.url}/api/jobs/${id}/logs?follow=1`, { ...authHeader("admin"), "last-event-id": "1:5" });
  await second.waitFor((c) => c.events.length === 2, "the missed lines");
  await post(["eight"]);
  await second.waitFor((c) => c.events.length === 3, "a line after the reconnect");
  writeControl(node.dataDir, { keys: { [key]: { exitNow: 0 } } });
  await second.waitFor((c) => c.ended, "the end of the stream");
  await second.done;
  expect([...lines(first), ...lines(second)]).toEqual(["one", "two", "three", "four", "five", "six", "seven", "eight"].map((line) => ({ attempt: 1, line })));

  // Without follow=1 the JSON answer is as it was.
  const json = await node.http("GET", `/api/jobs/${id}/logs`);
  expect(json.status).toBe(200);
  expect(json.body).toMatchObject({ jobId: id, attempts: [{ attempt: 1, state: "exited", lines: expect.any(Array) }] });
  // A bad position is refused.
  expect((await node.http("GET", `/api/jobs/${id}/logs?follow=1`, undefined, { ...authHeader("admin"), "last-event-id": "seven" })).status).toBe(422);
});

test("a client that stops reading is cut once its buffer is full; the server holds no more for it", async () => {
  const { id, key, post } = await runningJob("slow");
  const cutBefore = await metric("blacktree_stream_cut_total", "logs");
  // A client that reads the headers, then nothing.
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.get(`${node.url}/api/jobs/${id}/logs?follow=1`, { headers: authHeader("admin") }, resolve);
    req.on("error", reject);
  });
  expect(res.statusCode).toBe(200);
  res.pause();
  res.socket.pause();
  const heapBefore = process.memoryUsage().heapUsed;
  const line = "x".repeat(4000);
  let postedBytes = 0;
  // 64 kB a post (the stored log's tail): the kernel's socket buffers fill, then the connection's own.
  await waitFor(
    async () => {
      await post(Array.from({ length: 16 }, () => line));
      postedBytes += 16 * 4000;
      return (await metric("blacktree_stream_cut_total", "logs")) > cutBefore;
    },
    { timeout: 60_000, interval: 1, message: "the slow client was never cut" },
  );
  // Cut after a bounded amount (the kernel's buffers plus BUFFER_BYTES), never holding it all.
  expect(postedBytes).toBeLessThan(64 * 1024 * 1024);
  expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
  await waitFor(async () => (await metric("blacktree_stream_connections", "logs")) === 0, { message: "the cut connection is still counted" });
  res.destroy();
  writeControl(node.dataDir, { keys: { [key]: { exitNow: 0 } } });
}, 90_000);

test("a node stops promptly with streams open; their clients see the connection end", async () => {
  const other = await startNode({ configure: useControlledTarget });
  const res = await other.http("POST", "/api/jobs", { type: "ctl", deploymentId: `stop-${run}` });
  const id = res.body.job.id as string;
  const streams = await Promise.all([`/api/jobs/${id}/events`, `/api/jobs/${id}/logs?follow=1`, "/api/events"].map((p) => SseClient.open(other.url + p, authHeader("admin"))));
  expect(streams.map((s) => s.status)).toEqual([200, 200, 200]);
  const started = Date.now();
  await other.stop();
  expect(Date.now() - started).toBeLessThan(10_000);
  await Promise.all(streams.map((s) => s.done));
  expect(streams.every((s) => s.closedByServer)).toBe(true);
}, 30_000);
