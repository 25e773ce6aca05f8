import { createParser, type EventSourceMessage } from "eventsource-parser";
import { waitFor } from "./wait";

export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * A Server-Sent Events client on fetch's streamed body, parsed by `eventsource-parser`:
 * records every message and comment; `close()` disconnects (as a client going away).
 */
export class SseClient {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  /** Resolves when the server closed the stream (or the client did). */
  readonly done: Promise<void>;
  closedByServer = false;
  /** The error answer of a stream that did not open (status ≠ 200). */
  errorBody: any;

  private constructor(
    readonly status: number,
    readonly contentType: string | null,
    body: ReadableStream<Uint8Array> | null,
    private readonly abort: AbortController,
  ) {
    const parser = createParser({
      onEvent: (m: EventSourceMessage) => this.messages.push({ id: m.id, event: m.event ?? "message", data: m.data }),
      onComment: (c: string) => this.comments.push(c.trim()),
    });
    this.done = (async () => {
      if (!body) return;
      const decoder = new TextDecoder();
      try {
        for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
        this.closedByServer = true;
      } catch {
        // aborted by close(), or the connection was cut
        if (!this.abort.signal.aborted) this.closedByServer = true;
      }
    })();
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const abort = new AbortController();
    const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal });
    if (res.status !== 200) {
      const text = await res.text();
      const client = new SseClient(res.status, res.headers.get("content-type"), null, abort);
      try {
        client.errorBody = JSON.parse(text);
      } catch {
        client.errorBody = text;
      }
      return client;
    }
    return new SseClient(res.status, res.headers.get("content-type"), res.body, abort);
  }

  /** The `job`/`log` messages (not `end`). */
  get events(): SseMessage[] {
    return this.messages.filter((m) => m.event !== "end");
  }

  get ended(): boolean {
    return this.messages.some((m) => m.event === "end");
  }

  async waitFor(pred: (c: this) => boolean, message: string, timeout = 15_000): Promise<void> {
    await waitFor(() => pred(this), { message, timeout });
  }

  close(): void {
    this.abort.abort();
  }
}
