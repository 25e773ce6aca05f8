/**
 * The dashboard's only link to the server: REST calls with the API key from sessionStorage
 * (entered once per browser session, gone when the tab closes; never in the page, a URL or
 * localStorage), and live streams opened with short-lived stream tokens, because an
 * EventSource cannot send an Authorization header.
 */

const KEY_SLOT = "blacktree.apiKey";

export type Role = "submitter" | "operator" | "admin";
export interface Me {
  name: string;
  role: Role;
}

export const session = {
  key(): string | null {
    return sessionStorage.getItem(KEY_SLOT);
  },
  set(key: string): void {
    sessionStorage.setItem(KEY_SLOT, key);
  },
  clear(): void {
    sessionStorage.removeItem(KEY_SLOT);
  },
};

const RANK: Record<Role, number> = { submitter: 0, operator: 1, admin: 2 };
export function can(me: Me | null, role: Role): boolean {
  return !!me && RANK[me.role] >= RANK[role];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T = any>(method: "GET" | "POST", path: string, body?: unknown, key = session.key()): Promise<T> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  const text = await res.text();
  let parsed: any = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) throw new ApiError(res.status, parsed?.error?.type ?? "HTTP_ERROR", parsed?.error?.message ?? `${res.status} ${res.statusText}`);
  return parsed as T;
}

export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

export type StreamStatus = "connecting" | "live" | "polling" | "ended";

export interface StreamOptions {
  /** Stream path with its query (without the token). */
  path: string;
  /** Body of POST /api/stream-tokens: `{ jobId }` or `{ scope: "events" }`. */
  token: Record<string, string>;
  /** Event names to listen to (`job`, `log`). */
  events: string[];
  onMessage(event: string, data: any, id: string): void;
  onStatus(status: StreamStatus): void;
  /** Called before a stream that starts from the beginning (the first; later ones resume after the last event seen). */
  onReset?(): void;
}

/**
 * Opens a server-sent event stream and keeps it open: a fresh token for every (re)connect
 * (a token is short-lived), `polling` while no stream can be had (the caller polls then),
 * `ended` after the server's `end`. Returns the closer.
 */
export function openStream(opts: StreamOptions): () => void {
  let closed = false;
  let source: EventSource | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let failures = 0;
  // The last event seen: a new stream (a new token) resumes after it, as the browser's own reconnects do with Last-Event-ID.
  let lastId = "";
  const retryLater = () => {
    if (closed) return;
    opts.onStatus("polling");
    timer = setTimeout(connect, Math.min(15_000, 1000 * 2 ** Math.min(failures++, 4)));
  };
  const connect = async () => {
    if (closed) return;
    let token: string;
    try {
      token = (await api<{ token: string }>("POST", "/api/stream-tokens", opts.token)).token;
    } catch (err) {
      // Refused for good (no such job, not this key's, no stream routes on this server): the caller polls.
      if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) return opts.onStatus("polling");
      return retryLater();
    }
    if (closed) return;
    if (!lastId) opts.onReset?.();
    const sep = opts.path.includes("?") ? "&" : "?";
    const resume = lastId ? `&lastEventId=${encodeURIComponent(lastId)}` : "";
    const es = new EventSource(`${opts.path}${sep}token=${encodeURIComponent(token)}${resume}`);
    source = es;
    es.onopen = () => {
      failures = 0;
      opts.onStatus("live");
    };
    for (const name of opts.events) {
      es.addEventListener(name, (e) => {
        const m = e as MessageEvent<string>;
        let data: unknown = null;
        try {
          data = JSON.parse(m.data);
        } catch {
          return;
        }
        if (m.lastEventId) lastId = m.lastEventId;
        opts.onMessage(name, data, m.lastEventId);
      });
    }
    es.addEventListener("end", () => {
      es.close();
      source = null;
      opts.onStatus("ended");
    });
    es.onerror = () => {
      // The browser reconnects by itself while the stream is open; once closed (a refused
      // or expired token) a new token is needed.
      if (es.readyState === EventSource.CLOSED && source === es) {
        source = null;
        retryLater();
      }
    };
  };
  opts.onStatus("connecting");
  void connect();
  return () => {
    closed = true;
    if (timer) clearTimeout(timer);
    source?.close();
  };
}

export const FINAL_STATES = ["succeeded", "failed", "timed_out", "cancelled", "rejected"];
export const JOB_STATES = ["queued", "launching", "running", "retrying", ...FINAL_STATES];
export const isFinal = (state: string) => FINAL_STATES.includes(state);
/** An operator's retry takes these back to `queued`. */
export const RETRYABLE = ["failed", "timed_out", "cancelled"];

export function fmtTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "—" : d.toLocaleString();
}

export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
