/**
 * The stream logic of lib/gateway/event-stream.ts without a broker: one shared tail per
 * gateway reading the store (SQLite, and PostgreSQL written by another node's store, whose
 * commits this store never hears of), fanned out to every stream; and the SSE connection's
 * bounded buffer on a real socket whose client stops reading.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { DEFAULT_STREAM_SETTINGS, EventSink, EventTail, SseConnection, streamAllEvents, streamJobEvents, StreamDeps } from "../../../lib/gateway/event-stream";
import { SecretBox } from "../../../lib/secrets/secret-box";
import type { JobStore } from "../../../lib/store/job-store";
import { PostgresJobStore } from "../../../lib/store/postgres/postgres-store";
import { SqliteJobStore } from "../../../lib/store/sqlite/sqlite-store";
import { countingStore } from "../../support/counting-store";
import { newJob } from "../../support/jobs";
import { tempDir } from "../../support/orchestrator";
import { createDatabase, TestDatabase } from "../../support/postgres";
import { waitFor } from "../../support/wait";

const secrets = new SecretBox(Buffer.alloc(32, 7));

/** Records what a stream sends. */
class RecordingSink implements EventSink {
  readonly sent: Array<{ id: string; event: string; data: any }> = [];
  ended = false;
  cutFor: string | null = null;
  private closers: Array<() => void> = [];
  get closed() {
    return this.ended || this.cutFor !== null;
  }
  send(id: string, event: string, data: unknown) {
    if (this.closed) throw new Error("sent after close");
    this.sent.push({ id, event, data });
  }
  end() {
    this.ended = true;
    this.closers.splice(0).forEach((f) => f());
  }
  cut(reason: string) {
    this.cutFor = reason;
    this.closers.splice(0).forEach((f) => f());
  }
  onClose(fn: () => void) {
    if (this.closed) fn();
    else this.closers.push(fn);
  }
}

/** Drives jobs through queued → launching → running → succeeded on `writer`, many at once. */
async function runJobs(writer: JobStore, ids: string[]) {
  await writer.createJobs(ids.map((id) => newJob(id, { type: "test" })));
  let claimed = 0;
  while (claimed < ids.length) claimed += (await writer.claimJobs({ now: Date.now(), limits: {}, max: 100 })).length;
  await Promise.all(
    ids.map(async (id) => {
      await writer.updateAttempt(id, 1, { handle: { key: `${id}:1` } }, { event: { kind: "attempt.launched", data: {} } });
      await writer.transition(id, { from: "launching", to: "running" });
      await writer.transition(id, { from: "running", to: "succeeded" });
    }),
  );
}

function dialects(): Array<[string, () => Promise<{ reader: JobStore; writer: JobStore; close(): Promise<void> }>]> {
  return [
    [
      "sqlite (one store)",
      async () => {
        const store = new SqliteJobStore({ file: path.join(tempDir(), "tail.db"), secrets });
        await store.migrate();
        return { reader: store, writer: store, close: () => store.close() };
      },
    ],
    [
      "postgres (written by another node's store)",
      async () => {
        const db: TestDatabase = await createDatabase("tail");
        const writer = new PostgresJobStore({ url: db.url, secrets });
        await writer.migrate();
        const reader = new PostgresJobStore({ url: db.url, secrets });
        return {
          reader,
          writer,
          close: async () => {
            await reader.close();
            await writer.close();
            await db.drop();
          },
        };
      },
    ],
  ];
}

describe.each(dialects())("the shared tail, %s", (_name, open) => {
  test("every stream gets exactly its job's events in position order; one read loop serves them all", async () => {
    const stores = await open();
    const { store: reader, reads } = countingStore(stores.reader);
    const settings = { ...DEFAULT_STREAM_SETTINGS, pollMs: 50 };
    const tail = new EventTail(reader, settings);
    const deps: StreamDeps = { store: reader, tail, settings };
    try {
      await runJobs(stores.writer, ["warm"]); // events before the tail starts are history
      const ids = Array.from({ length: 40 }, (_, i) => `j${i}`);
      const sinks = new Map(ids.map((id) => [id, new RecordingSink()]));
      const all = new RecordingSink();
      await streamAllEvents(deps, {}, null, all);
      await Promise.all(ids.map((id) => streamJobEvents(deps, id, null, sinks.get(id)!)));
      reads.counting = true;
      await runJobs(stores.writer, ids);
      await waitFor(() => [...sinks.values()].every((s) => s.ended), { message: "not every stream ended", timeout: 20_000 });
      for (const id of ids) {
        const got = sinks.get(id)!.sent.map((m) => Number(m.id));
        expect(got).toEqual((await stores.reader.getEvents(id)).map((e) => e.seq));
        expect(got).toEqual([...got].sort((a, b) => a - b));
      }
      // The operator stream: every position once, ascending, no gap among these jobs' events.
      const seqs = all.sent.map((m) => Number(m.id));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      const expected = (await stores.reader.readEvents(0, 10_000)).filter((e) => e.jobId !== "warm").map((e) => e.seq);
      expect(seqs).toEqual(expected);
      // One tail: its reads do not grow with the number of streams (40 jobs + 1 here).
      expect(reads.callsByMethod.readEvents ?? 0).toBeLessThan(settings.batch);
      expect(tail.subscribers).toBe(1); // the ended job streams unsubscribed
    } finally {
      tail.stop();
      await stores.close();
    }
  }, 60_000);
});

test("a stream that cannot keep up while replaying is cut, not buffered without bound", async () => {
  const store = new SqliteJobStore({ file: path.join(tempDir(), "replay.db"), secrets });
  await store.migrate();
  const settings = { ...DEFAULT_STREAM_SETTINGS, pollMs: 20, maxPendingEvents: 5 };
  const tail = new EventTail(store, settings);
  try {
    await store.createJob(newJob("busy", { type: "test" }));
    await store.claimJobs({ now: Date.now(), limits: {}, max: 1 });
    // Its history read hangs: the live events pile up meanwhile.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = Object.create(store, { getEvents: { value: async (id: string) => (await gate, store.getEvents(id)) } }) as JobStore;
    const sink = new RecordingSink();
    const streaming = streamJobEvents({ store: slow, tail, settings }, "busy", null, sink);
    await waitFor(() => tail.subscribers === 1, { message: "the stream never subscribed" });
    for (let i = 0; i < 10; i++) await store.updateAttempt("busy", 1, {}, { event: { kind: "attempt.note", data: { i } } });
    await waitFor(() => sink.cutFor !== null, { message: "the stream was never cut" });
    release();
    await streaming;
    expect(sink.sent).toEqual([]);
    expect(tail.subscribers).toBe(0);
  } finally {
    tail.stop();
    await store.close();
  }
});

test("an SSE connection whose client stops reading is cut when its unsent bytes pass the bound", async () => {
  const maxBufferBytes = 256 * 1024;
  let conn!: SseConnection;
  let maxQueued = 0;
  let res!: http.ServerResponse;
  const server = http.createServer((_req, r) => {
    res = r;
    conn = new SseConnection(r, "events", { heartbeatMs: 60_000, maxBufferBytes });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const port = (server.address() as AddressInfo).port;
    const client = await new Promise<http.IncomingMessage>((resolve) => http.get(`http://127.0.0.1:${port}/`, resolve));
    client.pause();
    client.socket.pause();
    const chunk = { blob: "y".repeat(16 * 1024) };
    let sent = 0;
    await waitFor(
      () => {
        for (let i = 0; i < 64 && !conn.closed; i++) {
          conn.send(String(++sent), "job", chunk);
          maxQueued = Math.max(maxQueued, res.writableLength);
        }
        return conn.closed;
      },
      { timeout: 30_000, interval: 1, message: "the connection was never cut" },
    );
    // Never more than the bound plus the one message that crossed it.
    expect(maxQueued).toBeLessThanOrEqual(maxBufferBytes + 17 * 1024);
    client.destroy();
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
