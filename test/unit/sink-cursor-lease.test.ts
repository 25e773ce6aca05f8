/**
 * A sink drain keeps its cursor in memory while it holds the sink's lease (one store read
 * per hold, not one per pass), and reads it again once it held the lease after a lapse:
 * another node may have drained the sink in between, and what it delivered is not sent again.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Lease } from "../../lib/engine/lease";
import type { JobEvent } from "../../lib/jobs/model";
import { SinkDrain } from "../../lib/status/sink-drain";
import type { StatusSink } from "../../lib/status/sink";
import { SqliteJobStore } from "../../lib/store/sqlite/sqlite-store";
import { newJob } from "../support/jobs";
import { waitFor } from "../support/wait";

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const TTL = 1000;

function recordingSink(): StatusSink & { seen: number[] } {
  const seen: number[] = [];
  return {
    name: "lease-test",
    seen,
    async deliver(events: JobEvent[], advance: (seq: number) => Promise<void>) {
      seen.push(...events.map((e) => e.seq));
      await advance(events[events.length - 1].seq);
    },
  };
}

let dir: string;
let store: SqliteJobStore;
/** The one clock of the leases and of the store that judges their expiry. */
let now = 0;
const clock = () => now;
beforeEach(async () => {
  now = 1_000_000;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-lease-"));
  store = new SqliteJobStore({ file: path.join(dir, "store.db"), clock });
  await store.migrate();
});
afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a drain that held the lease again after another node drained the sink resumes from that node's cursor", async () => {
  const leaseA = new Lease(store, "sink:lease-test", () => "node-a", TTL, clock);
  const leaseB = new Lease(store, "sink:lease-test", () => "node-b", TTL, clock);
  const sinkA = recordingSink();
  const sinkB = recordingSink();
  const drainA = new SinkDrain(store, sinkA, quiet, leaseA);
  const drainB = new SinkDrain(store, sinkB, quiet, leaseB);
  try {
    for (const id of ["one", "two", "three"]) await store.createJob(newJob(id));
    drainA.kick();
    await waitFor(() => sinkA.seen.length === 3, { message: "node A never delivered the first three events" });
    expect(leaseA.term).toBe(1);

    // Node A pauses past its lease; node B takes the sink over and delivers the next two.
    now += 2 * TTL;
    for (const id of ["four", "five"]) await store.createJob(newJob(id));
    drainB.kick();
    await waitFor(() => sinkB.seen.length === 2, { message: "node B never delivered the next two events" });
    expect(await store.getCursor("lease-test")).toBe(5);

    // B lapses in turn; A holds the lease again (a new term) and must not send four and five again.
    now += 2 * TTL;
    await store.createJob(newJob("six"));
    drainA.kick();
    await waitFor(async () => (await store.getCursor("lease-test")) === 6, { message: "node A never delivered the sixth event" });
    expect(leaseA.term).toBe(2);
    expect({ a: sinkA.seen, b: sinkB.seen }).toEqual({ a: [1, 2, 3, 6], b: [4, 5] });
  } finally {
    await drainA.stop();
    await drainB.stop();
  }
});

test("while the lease is held without a lapse, the cursor is read from the store once", async () => {
  const lease = new Lease(store, "sink:lease-test", () => "node-a", TTL, clock);
  const sink = recordingSink();
  let cursorReads = 0;
  const getCursor = store.getCursor.bind(store);
  store.getCursor = async (name: string) => {
    cursorReads += 1;
    return getCursor(name);
  };
  const drain = new SinkDrain(store, sink, quiet, lease);
  try {
    for (let i = 0; i < 5; i++) {
      await store.createJob(newJob(`job-${i}`));
      drain.kick();
      await waitFor(() => sink.seen.length === i + 1, { message: `event ${i + 1} never delivered` });
      now += TTL / 2; // renewed in time: the same hold
    }
    expect({ cursorReads, term: lease.term, seen: sink.seen }).toEqual({ cursorReads: 1, term: 1, seen: [1, 2, 3, 4, 5] });
  } finally {
    await drain.stop();
  }
});
