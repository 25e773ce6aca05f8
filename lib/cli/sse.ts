import { createParser, type EventSourceMessage } from "eventsource-parser";
import { ApiClient, ApiError } from "./client";
import { CliError, EXIT } from "./exit-codes";

export interface FollowOptions {
  /** Resume after this event id (sent as `Last-Event-ID`). */
  lastEventId?: string;
  /** How long a cut stream may stay down (consecutive failed reconnects) before giving up, ms. */
  reconnectBudgetMs?: number;
  /** No byte (not even a heartbeat) for this long: the connection is taken as dead and reopened, ms. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  /** Told each time the stream is reopened after a cut. */
  onReconnect?: (attempt: number, lastEventId: string | undefined) => void;
  query?: Record<string, string | number | undefined>;
}

/** The route answered, but not with an event stream (a node older than the stream). */
export class NotAStream extends CliError {
  constructor(route: string, contentType: string) {
    super(`${route} is not an event stream on this node (${contentType || "no content type"})`, EXIT.api);
    this.name = "NotAStream";
  }
}

/** Refusals a reconnect cannot cure (bad key, no such job, no stream): thrown at once. Others (429, 5xx) are retried. */
function isFatal(err: unknown): boolean {
  if (err instanceof NotAStream) return true;
  return err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
}

/**
 * Reads an SSE stream to its `end` event, reopening it with `Last-Event-ID` whenever it is
 * cut (a dropped connection, a restarted node, silence past the idle timeout), so the
 * caller sees every event once. Resolves after `end`; throws a connection CliError when
 * the stream stays down past the budget.
 */
export async function followStream(client: ApiClient, route: string, onMessage: (msg: EventSourceMessage) => void, opts: FollowOptions = {}): Promise<void> {
  const budget = opts.reconnectBudgetMs ?? 30_000;
  const idleTimeout = opts.idleTimeoutMs ?? 45_000;
  let lastEventId = opts.lastEventId;
  let downSince: number | null = null;
  let reconnects = 0;
  let lastError: unknown = null;
  for (;;) {
    if (opts.signal?.aborted) return;
    if (downSince !== null) {
      if (Date.now() - downSince > budget) {
        const why = lastError instanceof Error ? lastError.message : "the stream kept closing";
        throw new CliError(`the event stream ${route} stayed cut for ${budget / 1000} s: ${why}`, EXIT.connection);
      }
      await sleep(Math.min(250 * 2 ** Math.min(reconnects, 3), 2_000), opts.signal);
      reconnects++;
      opts.onReconnect?.(reconnects, lastEventId);
    }
    const idle = new AbortController();
    const onAbort = () => idle.abort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    let ended = false;
    try {
      const res = await client.open(route, { signal: idle.signal, query: opts.query, headers: lastEventId !== undefined ? { "last-event-id": lastEventId } : {} });
      const type = res.headers.get("content-type") ?? "";
      if (!type.startsWith("text/event-stream")) {
        await res.body?.cancel().catch(() => undefined);
        throw new NotAStream(route, type);
      }
      const parser = createParser({
        onEvent(msg) {
          // Up again only once something came through (a stream that opens and closes at once is still down).
          downSince = null;
          reconnects = 0;
          if (msg.id !== undefined) lastEventId = msg.id;
          if (msg.event === "end") ended = true;
          onMessage(msg);
        },
      });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let timer = setTimeout(() => idle.abort(), idleTimeout);
      try {
        while (!ended) {
          const { value, done } = await reader.read();
          if (done) break;
          clearTimeout(timer);
          timer = setTimeout(() => idle.abort(), idleTimeout);
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } finally {
        clearTimeout(timer);
        if (ended) await reader.cancel().catch(() => undefined);
      }
      if (ended) return;
      lastError = new Error("the server closed the stream before its end");
    } catch (err) {
      if (opts.signal?.aborted) return;
      if (isFatal(err)) throw err;
      lastError = err;
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
    }
    downSince ??= Date.now();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
