import { FINAL_STATES, type JobState } from "../jobs/states";
import { ApiClient, ApiError } from "./client";
import { CliError, EXIT, exitCodeOfState } from "./exit-codes";
import type { Output } from "./output";
import { followStream, NotAStream } from "./sse";

/** One history event as the events stream sends it (an outbox row). */
export interface JobEventData {
  seq: number;
  jobId: string;
  kind: string;
  from: string | null;
  to: string | null;
  attempt: number | null;
  data: Record<string, unknown> | null;
  at: string | number;
}

export interface WatchOptions {
  /** Follow the log too (the default). */
  logs: boolean;
  reconnectBudgetMs?: number;
  signal?: AbortSignal;
  /** How long to wait for the log stream to finish once the job is final, ms. */
  logGraceMs?: number;
}

const ICON: Record<string, string> = { succeeded: "✅", failed: "❌", timed_out: "❌", cancelled: "⚠️", rejected: "❌", retrying: "⚠️" };

/**
 * Follows a job to its end: each state change as a line, the log tail as it is written,
 * a spinner with the current state and time on a terminal. Returns the exit code of the
 * final state (0 only for `succeeded`).
 */
export async function watchJob(client: ApiClient, out: Output, id: string, opts: WatchOptions): Promise<number> {
  const started = Date.now();
  const route = `/api/jobs/${encodeURIComponent(id)}`;
  let state: string | null = null;
  let attempt = 0;
  let finalEvent: JobEventData | null = null;
  const seen = new Set<number>();

  const spin = () => out.progress(`${id} ${state ?? "…"}${attempt ? ` · attempt ${attempt}` : ""} · ${Math.round((Date.now() - started) / 1000)} s`);
  const ticker = setInterval(spin, 1000);
  spin();

  const onEvent = (e: JobEventData) => {
    // Never twice, even if a server resent a row after a reconnect.
    if (seen.has(e.seq)) return;
    seen.add(e.seq);
    if (e.attempt) attempt = e.attempt;
    if (out.json) out.record({ type: "event", ...e });
    if (!e.to) return;
    state = e.to;
    // The spinner first, so it is never redrawn below the line with the state it had before.
    spin();
    if (!out.json) out.line(stateLine(out, e));
    if ((FINAL_STATES as readonly string[]).includes(e.to)) finalEvent = e;
  };

  const logAbort = new AbortController();
  const stop = () => logAbort.abort();
  opts.signal?.addEventListener("abort", stop, { once: true });
  let liveLog = opts.logs;
  const logs = opts.logs ? followLogs(client, out, id, logAbort.signal, opts.reconnectBudgetMs).then((ok) => void (liveLog = ok)) : Promise.resolve();

  try {
    try {
      await followStream(client, `${route}/events`, (msg) => {
        if (msg.event === "job") onEvent(JSON.parse(msg.data) as JobEventData);
      }, {
        reconnectBudgetMs: opts.reconnectBudgetMs,
        signal: opts.signal,
        onReconnect: (n, last) => out.note(`🔄 event stream cut: reconnecting (${n}) after event ${last ?? "none"}`),
      });
    } catch (err) {
      // A node without the events stream (older than it): follow the job by polling instead.
      if (!(err instanceof NotAStream || (err instanceof ApiError && err.status === 404 && err.type !== "JOB_NOT_FOUND"))) throw err;
      out.note("⚠️ this node has no event stream: polling the job instead");
      await pollJob(client, route, onEvent, opts.signal);
    }
    if (opts.signal?.aborted) throw new CliError("interrupted", EXIT.interrupted);
    // The log stream ends on its own once the job is final; give it a moment to deliver the tail.
    await Promise.race([logs, delay(opts.logGraceMs ?? 5_000)]);
  } finally {
    clearInterval(ticker);
    logAbort.abort();
    opts.signal?.removeEventListener("abort", stop);
    out.stopProgress();
  }
  await logs.catch(() => undefined);
  if (opts.logs && !liveLog) await printLogTail(client, out, id);

  let final = finalEvent as JobEventData | null;
  if (!final) {
    // The stream ended without a final transition in view: ask the job itself.
    const { job } = await client.request<{ job: { state: JobState } }>("GET", route);
    if (!(FINAL_STATES as readonly string[]).includes(job.state)) throw new CliError(`the event stream ended but job ${id} is still ${job.state}`, EXIT.connection);
    state = job.state;
  } else state = final.to!;
  const code = exitCodeOfState(state!);
  if (out.json) out.record({ type: "end", jobId: id, state, exitCode: code });
  return code;
}

function stateLine(out: Output, e: JobEventData): string {
  const c = out.colors;
  const time = c.dim(new Date(e.at).toISOString().slice(11, 19));
  const to = e.to!;
  const icon = ICON[to] ?? "🔄";
  const paint = to === "succeeded" ? c.green : ICON[to] === "❌" ? c.red : ICON[to] === "⚠️" ? c.yellow : c.cyan;
  const why = reasonOf(e.data);
  return `${time} ${icon} ${paint(to)}${e.attempt ? c.dim(` attempt ${e.attempt}`) : ""}${why ? ` — ${why}` : ""}`;
}

/** The short "why" an event carries, if any (a failure's reason, a timeout's kind, who cancelled). */
function reasonOf(data: Record<string, unknown> | null): string {
  if (!data) return "";
  const error = data.error as { message?: string } | undefined;
  const parts = [typeof data.reason === "string" ? data.reason : error?.message, typeof data.timeout === "string" ? data.timeout : undefined, typeof data.by === "string" ? `by ${data.by}` : undefined];
  return parts.filter(Boolean).join(", ").slice(0, 300);
}

/** Log lines as the worker writes them, until the job is final; false when the node has no log stream. */
async function followLogs(client: ApiClient, out: Output, id: string, signal: AbortSignal, reconnectBudgetMs?: number): Promise<boolean> {
  try {
    await followStream(client, `/api/jobs/${encodeURIComponent(id)}/logs`, (msg) => {
      if (msg.event !== "log") return;
      const { attempt, line } = JSON.parse(msg.data) as { attempt: number; line: string };
      if (out.json) out.record({ type: "log", attempt, line });
      else out.line(out.colors.dim("  │ ") + line);
    }, { query: { follow: 1 }, signal, reconnectBudgetMs });
    return true;
  } catch (err) {
    if (signal.aborted) return true;
    // The log is extra: without a live one, the tail is printed when the job is over.
    out.note(err instanceof NotAStream ? "⚠️ this node streams no live log: its tail follows when the job ends" : `⚠️ no live log (${(err as Error).message}): its tail follows when the job ends`);
    return false;
  }
}

/** The last lines of the job's latest attempt (GET /logs), for nodes without the log stream. */
async function printLogTail(client: ApiClient, out: Output, id: string, lines = 20): Promise<void> {
  const { attempts } = await client.request<{ attempts: Array<{ attempt: number; lines: string[] }> }>("GET", `/api/jobs/${encodeURIComponent(id)}/logs`);
  const last = attempts[attempts.length - 1];
  for (const line of last?.lines.slice(-lines) ?? []) {
    if (out.json) out.record({ type: "log", attempt: last.attempt, line });
    else out.line(out.colors.dim("  │ ") + line);
  }
}

/** The fallback: the job's history every half second, new rows handed on in order. */
async function pollJob(client: ApiClient, route: string, onEvent: (e: JobEventData) => void, signal?: AbortSignal): Promise<void> {
  for (;;) {
    const { job, history } = await client.request<{ job: { state: string }; history: JobEventData[] }>("GET", route, { signal });
    for (const e of history) onEvent(e);
    if ((FINAL_STATES as readonly string[]).includes(job.state) || signal?.aborted) return;
    await delay(500);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * `logs -f` on a node without the log stream: the log every half second, new lines printed
 * as they appear (per attempt), until the job is final.
 */
export async function pollLogs(client: ApiClient, id: string, onLine: (attempt: number, line: string) => void, signal?: AbortSignal): Promise<void> {
  const printed = new Map<number, number>();
  const route = `/api/jobs/${encodeURIComponent(id)}`;
  for (;;) {
    const { job } = await client.request<{ job: { state: string } }>("GET", route, { signal });
    const { attempts } = await client.request<{ attempts: Array<{ attempt: number; lines: string[] }> }>("GET", `${route}/logs`, { signal });
    for (const a of attempts) {
      const from = printed.get(a.attempt) ?? 0;
      for (const line of a.lines.slice(from)) onLine(a.attempt, line);
      printed.set(a.attempt, Math.max(from, a.lines.length));
    }
    if ((FINAL_STATES as readonly string[]).includes(job.state) || signal?.aborted) return;
    await delay(500);
  }
}
