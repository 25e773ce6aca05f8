import type { ServerResponse } from "node:http";
import client from "prom-client";
import type { JobEvent } from "../jobs/model";
import { eventView } from "../jobs/model";
import type { JobState } from "../jobs/states";
import { isFinal } from "../jobs/states";
import { metricsRegistry } from "../metrics";
import type { JobStore } from "../store/job-store";

/** Settings of the stream routes (env: BLACKTREE_STREAM_*). */
export interface StreamSettings {
  /** A `: heartbeat` comment this often, so proxies and clients see a live connection. */
  heartbeatMs: number;
  /** Bytes a connection may have waiting to be sent (a client that stopped reading): beyond, it is cut. */
  maxBufferBytes: number;
  /** Events a stream may hold while it replays history: beyond, it is cut. */
  maxPendingEvents: number;
  /** The shared tail's safety poll (change notices wake it sooner). */
  pollMs: number;
  /** Events read per store query. */
  batch: number;
  /** The most events the operator stream replays after a `Last-Event-ID`. */
  replayLimit: number;
}

export const DEFAULT_STREAM_SETTINGS: StreamSettings = { heartbeatMs: 15_000, maxBufferBytes: 1 << 20, maxPendingEvents: 10_000, pollMs: 1000, batch: 500, replayLimit: 10_000 };

export type StreamKind = "job" | "events" | "logs";

export const streamMetrics = {
  connections: new client.Gauge({ name: "blacktree_stream_connections", help: "Open Server-Sent Events connections of this gateway, by stream", labelNames: ["stream"], registers: [metricsRegistry] }),
  cut: new client.Counter({ name: "blacktree_stream_cut_total", help: "Stream connections closed by the server because the client read too slowly", labelNames: ["stream"], registers: [metricsRegistry] }),
};

/** What a stream writes to: one SSE connection (or, in tests, anything that records). */
export interface EventSink {
  /** One message: `id`, `event`, `data` (JSON). */
  send(id: string, event: string, data: unknown): void;
  /** `event: end` and close: nothing more will come. */
  end(): void;
  /** Closes the connection at once (a client too slow, a buffer full); the client resumes with Last-Event-ID. */
  cut(reason: string): void;
  readonly closed: boolean;
  onClose(fn: () => void): void;
}

/**
 * One Server-Sent Events connection on an HTTP response. What the client has not read yet
 * stays bounded: when the bytes waiting to be sent exceed `maxBufferBytes` the connection
 * is cut instead of buffered further.
 */
export class SseConnection implements EventSink {
  private isClosed = false;
  private readonly closers: Array<() => void> = [];
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly res: ServerResponse,
    private readonly kind: StreamKind,
    private readonly settings: Pick<StreamSettings, "heartbeatMs" | "maxBufferBytes">,
  ) {
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache, no-transform",
      Connection: "keep-alive",
      // Proxies that buffer responses (nginx) pass this one through as it is written.
      "X-Accel-Buffering": "no",
    });
    res.socket?.setNoDelay(true);
    streamMetrics.connections.inc({ stream: kind });
    res.once("close", () => this.closedNow());
    this.heartbeat = setInterval(() => this.write(": heartbeat\n\n"), settings.heartbeatMs);
    this.heartbeat.unref();
    // Tells EventSource how soon to reconnect (ms) and flushes the headers.
    this.write("retry: 1000\n\n");
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(id: string, event: string, data: unknown): void {
    this.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (this.isClosed) return;
    this.write("event: end\ndata: {}\n\n");
    this.res.end();
  }

  cut(_reason: string): void {
    if (this.isClosed) return;
    streamMetrics.cut.inc({ stream: this.kind });
    this.res.destroy();
  }

  /** Closes at once, not counted as a cut (the gateway stops). */
  close(): void {
    if (!this.isClosed) this.res.destroy();
  }

  onClose(fn: () => void): void {
    if (this.isClosed) fn();
    else this.closers.push(fn);
  }

  private write(chunk: string): void {
    if (this.isClosed || this.res.writableEnded) return;
    this.res.write(chunk);
    // Bytes Node holds for this response (its own buffer and the socket's): the kernel's are not counted, and are bounded.
    if (this.res.writableLength > this.settings.maxBufferBytes) this.cut("buffer full");
  }

  private closedNow(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    clearInterval(this.heartbeat);
    streamMetrics.connections.dec({ stream: this.kind });
    for (const fn of this.closers.splice(0)) fn();
  }
}

/** The job fields the operator stream filters on (they never change). */
export interface JobMeta {
  type: string;
  deploymentId: string | null;
}

export interface TailSubscriber {
  /** Whether `accepts` looks at the job's type or deployment. */
  readonly needsMeta: boolean;
  accepts(e: JobEvent, meta: JobMeta | null): boolean;
  deliver(e: JobEvent): void;
}

const META_CACHE = 20_000;

/**
 * One tail of the store's outbox per gateway process, fanned out to every open stream: the
 * store is the source (a transition committed on another node is read here like a local
 * one), read after the last position this tail dispatched. Woken by change notices (the
 * store's `onCommit`, the cluster's `blacktree.store.changed` — call `wake()`), with a slow
 * poll as a safety net; one query loop whatever the number of clients.
 */
export class EventTail {
  private cursor = -1;
  private starting: Promise<void> | null = null;
  private running = false;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly subs = new Set<TailSubscriber>();
  private readonly metas = new Map<string, JobMeta>();

  constructor(
    private readonly store: JobStore,
    private readonly settings: Pick<StreamSettings, "pollMs" | "batch">,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Starts at the newest event (older ones are each stream's history); retried by the next caller if the store is down. */
  ready(): Promise<void> {
    this.starting ??= (async () => {
      const head = await this.store.lastEventSeq();
      if (this.cursor < 0) this.cursor = head;
      this.unsubscribe ??= this.store.onCommit(() => this.wake());
      if (!this.timer) {
        this.timer = setInterval(() => this.wake(), this.settings.pollMs);
        this.timer.unref();
      }
    })().catch((err) => {
      this.starting = null;
      throw err;
    });
    return this.starting;
  }

  /** The last position dispatched: every later event reaches the subscribers there are now. */
  get position(): number {
    return this.cursor;
  }

  get subscribers(): number {
    return this.subs.size;
  }

  subscribe(sub: TailSubscriber): () => void {
    this.subs.add(sub);
    return () => this.subs.delete(sub);
  }

  /** Something was committed somewhere: read on (at most one read loop at a time, and one more after). */
  wake(): void {
    if (this.stopped || this.cursor < 0) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.drain()
      .catch((err) => this.onError(err))
      .finally(() => {
        this.running = false;
        if (this.again) this.wake();
      });
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
  }

  /** The type and deployment of each event's job, from a bounded cache (they never change). */
  async metasOf(events: readonly JobEvent[]): Promise<Map<string, JobMeta>> {
    const missing = [...new Set(events.map((e) => e.jobId))].filter((id) => !this.metas.has(id));
    const jobs = await Promise.all(missing.map((id) => this.store.getJob(id)));
    for (const job of jobs) {
      if (!job) continue;
      this.metas.set(job.id, { type: job.type, deploymentId: job.deploymentId });
      if (this.metas.size > META_CACHE) this.metas.delete(this.metas.keys().next().value as string);
    }
    return this.metas;
  }

  private async drain(): Promise<void> {
    do {
      this.again = false;
      for (;;) {
        const batch = await this.store.readEvents(this.cursor, this.settings.batch);
        if (!batch.length || this.stopped) break;
        const metas = [...this.subs].some((s) => s.needsMeta) ? await this.metasOf(batch) : null;
        // Synchronous from here: a stream subscribing now sees the position and every later event.
        for (const e of batch) {
          if (e.seq <= this.cursor) continue;
          this.cursor = e.seq;
          const meta = metas?.get(e.jobId) ?? null;
          for (const sub of [...this.subs]) if (sub.accepts(e, meta)) sub.deliver(e);
        }
        if (batch.length < this.settings.batch) break;
      }
    } while (this.again && !this.stopped);
  }
}

/** A client's resume point: `Last-Event-ID` (or `lastEventId`), a whole non-negative number; null when absent. */
export function parseEventPosition(raw: unknown): number | null | "invalid" {
  if (raw === undefined || raw === null || raw === "") return null;
  if (typeof raw !== "string" || !/^\d{1,15}$/.test(raw.trim())) return "invalid";
  return Number(raw.trim());
}

/**
 * Buffers what the tail delivers while a stream replays history, then passes it on: the
 * stream subscribes before it reads history, so an event committed meanwhile is either in
 * the history or delivered here (the caller drops what it already sent by position).
 */
class Subscription implements TailSubscriber {
  private pending: JobEvent[] | null = [];
  private forward: ((e: JobEvent) => void) | null = null;

  constructor(
    readonly needsMeta: boolean,
    private readonly filter: (e: JobEvent, meta: JobMeta | null) => boolean,
    private readonly sink: EventSink,
    private readonly maxPending: number,
  ) {}

  accepts(e: JobEvent, meta: JobMeta | null): boolean {
    return this.filter(e, meta);
  }

  deliver(e: JobEvent): void {
    if (this.forward) return this.forward(e);
    this.pending!.push(e);
    if (this.pending!.length > this.maxPending) this.sink.cut("too many events while replaying");
  }

  /** From now on every event goes to `fn`, the buffered ones first. */
  goLive(fn: (e: JobEvent) => void): void {
    const buffered = this.pending ?? [];
    this.pending = null;
    this.forward = fn;
    for (const e of buffered) fn(e);
  }
}

export interface StreamDeps {
  store: JobStore;
  tail: EventTail;
  settings: StreamSettings;
}

/**
 * One job's events: its stored history after `after`, then live ones, each with its outbox
 * position as `id`; `event: end` once the event that made the job final was sent.
 * A reconnect with the last id it saw misses nothing and sees nothing twice.
 */
export async function streamJobEvents(deps: StreamDeps, jobId: string, after: number | null, sink: EventSink): Promise<void> {
  await deps.tail.ready();
  if (sink.closed) return;
  const sub = new Subscription(false, (e) => e.jobId === jobId, sink, deps.settings.maxPendingEvents);
  sink.onClose(deps.tail.subscribe(sub));
  let lastSent = after ?? 0;
  let lastState: JobState | null = null;
  const take = (e: JobEvent) => {
    if (e.seq <= 0) return;
    if (e.to !== null) lastState = e.to;
    if (e.seq <= lastSent) return;
    lastSent = e.seq;
    sink.send(String(e.seq), "job", eventView(e));
  };
  const endIfFinal = () => {
    if (lastState !== null && isFinal(lastState)) sink.end();
  };
  let history: JobEvent[];
  try {
    history = await deps.store.getEvents(jobId);
  } catch (err) {
    sink.cut("store unavailable");
    throw err;
  }
  if (sink.closed) return;
  // By position: an event not yet given one (PostgreSQL, committed a moment ago) comes from the tail.
  for (const e of history.filter((h) => h.seq > 0).sort((a, b) => a.seq - b.seq)) take(e);
  sub.goLive((e) => {
    take(e);
    endIfFinal();
  });
  endIfFinal();
}

export interface EventFilter {
  deploymentId?: string;
  type?: string;
  /** The state an event moved its job to (`to`). */
  state?: string;
}

/**
 * Every job's events matching the filter, live, never ending. With `after`, first the events
 * after it (at most `replayLimit` of the newest: the replay is bounded).
 */
export async function streamAllEvents(deps: StreamDeps, filter: EventFilter, after: number | null, sink: EventSink): Promise<void> {
  await deps.tail.ready();
  if (sink.closed) return;
  const needsMeta = filter.type !== undefined || filter.deploymentId !== undefined;
  const matches = (e: JobEvent, meta: JobMeta | null) =>
    (filter.state === undefined || e.to === filter.state) && (filter.type === undefined || meta?.type === filter.type) && (filter.deploymentId === undefined || meta?.deploymentId === filter.deploymentId);
  const sub = new Subscription(needsMeta, matches, sink, deps.settings.maxPendingEvents);
  sink.onClose(deps.tail.subscribe(sub));
  // Events up to here were dispatched before this stream subscribed; every later one reaches it.
  const head = deps.tail.position;
  let lastSeen = after ?? head;
  const take = (e: JobEvent, meta: JobMeta | null) => {
    if (e.seq <= lastSeen) return;
    lastSeen = e.seq;
    if (matches(e, meta)) sink.send(String(e.seq), "job", eventView(e));
  };
  if (after !== null && after < head) {
    let from = Math.max(after, head - deps.settings.replayLimit);
    lastSeen = from;
    while (from < head && !sink.closed) {
      const batch = (await deps.store.readEvents(from, deps.settings.batch)).filter((e) => e.seq <= head);
      if (!batch.length) break;
      const metas = needsMeta ? await deps.tail.metasOf(batch) : null;
      for (const e of batch) take(e, metas?.get(e.jobId) ?? null);
      from = batch[batch.length - 1]!.seq;
    }
    lastSeen = Math.max(lastSeen, head);
  }
  // Live events were filtered by the tail already.
  sub.goLive((e) => {
    if (e.seq <= lastSeen) return;
    lastSeen = e.seq;
    sink.send(String(e.seq), "job", eventView(e));
  });
}
