import type { JobEvent } from "../../lib/jobs/model";
import { SinkDrain } from "../../lib/status/sink-drain";
import type { StatusSink } from "../../lib/status/sink";
import type { JobStore } from "../../lib/store/job-store";
import { waitFor } from "../support/wait";

/**
 * A drain in backoff ignores kicks (the status service's 500 ms poll, every
 * `outbox.written`) until its retry timer fires, then retries once.
 *
 * On the code before this fix: the first test counted 198 deliveries in the 1 s window
 * (every 5 ms kick started a new pass over the same 200 events) where at most 5 belong;
 * the second saw the three failed deliveries 5 ms apart instead of 100/200 ms.
 */
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

function outbox(count: number) {
  const events: JobEvent[] = Array.from({ length: count }, (_, i) => ({ seq: i + 1, jobId: `job-${i}`, kind: "job.created", from: null, to: "queued", attempt: null, data: {}, at: 0 }));
  let cursor = 0;
  const store = {
    getCursor: async () => cursor,
    setCursor: async (_sink: string, seq: number) => {
      cursor = seq;
    },
    readEvents: async (after: number, limit: number) => events.filter((e) => e.seq > after).slice(0, limit),
  } as unknown as JobStore;
  return { store, cursor: () => cursor };
}

/** A sink that refuses its first `failures` deliveries (a nacking broker), recording when each call came. */
function failingSink(failures: number) {
  const calls: Array<{ at: number; size: number; ok: boolean }> = [];
  const sink: StatusSink = {
    name: "test-sink",
    async deliver(events, advance) {
      const ok = calls.length >= failures;
      calls.push({ at: Date.now(), size: events.length, ok });
      if (!ok) throw new Error("nacked by the broker");
      await advance(events[events.length - 1].seq);
    },
  } as StatusSink;
  return { sink, calls };
}

describe("SinkDrain backoff", () => {
  let drain: SinkDrain | undefined;
  let kicker: NodeJS.Timeout | undefined;
  afterEach(async () => {
    clearInterval(kicker);
    await drain?.stop();
  });

  test("kicks every 5 ms during an outage do not bypass the backoff: one delivery per retry timer", async () => {
    const { store } = outbox(250);
    const { sink, calls } = failingSink(Number.MAX_SAFE_INTEGER);
    drain = new SinkDrain(store, sink, quiet);
    const started = Date.now();
    drain.kick();
    kicker = setInterval(() => drain!.kick(), 5);
    // Retries at ~100, ~300, ~700 ms after the first failure (100 ms doubling): 4 calls by 1 s.
    await waitFor(() => Date.now() - started >= 1000, { timeout: 2000, interval: 10, message: "window" });
    clearInterval(kicker);
    const count = calls.length;
    expect(count).toBeGreaterThanOrEqual(3);
    expect(count).toBeLessThanOrEqual(5);
    // Each retry came from the timer, no earlier than its delay.
    const gaps = calls.slice(1).map((c, i) => c.at - calls[i].at);
    expect(gaps[0]).toBeGreaterThanOrEqual(95);
    if (gaps[1] !== undefined) expect(gaps[1]).toBeGreaterThanOrEqual(195);
    if (gaps[2] !== undefined) expect(gaps[2]).toBeGreaterThanOrEqual(395);
  });

  test("a sink that fails 3 times gets its events after the backoff, each failed batch retried once", async () => {
    const { store, cursor } = outbox(250);
    const { sink, calls } = failingSink(3);
    drain = new SinkDrain(store, sink, quiet);
    drain.kick();
    kicker = setInterval(() => drain!.kick(), 5);
    await waitFor(() => cursor() === 250, { timeout: 5000, message: "all events delivered" });
    clearInterval(kicker);
    // 3 refusals of the first 200, then 200 and the remaining 50: no other call.
    expect(calls.map((c) => [c.size, c.ok])).toEqual([
      [200, false],
      [200, false],
      [200, false],
      [200, true],
      [50, true],
    ]);
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(95);
    expect(calls[2].at - calls[1].at).toBeGreaterThanOrEqual(195);
    expect(calls[3].at - calls[2].at).toBeGreaterThanOrEqual(395);
  });

  test("kicks after a recovery run at once again (no backoff left behind)", async () => {
    const { store, cursor } = outbox(10);
    const { sink, calls } = failingSink(1);
    drain = new SinkDrain(store, sink, quiet);
    drain.kick();
    await waitFor(() => cursor() === 10, { timeout: 2000, message: "delivered after one retry" });
    expect(calls).toHaveLength(2);
  });
});
