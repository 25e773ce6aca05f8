/**
 * The worker client: how a worker — on any target, in any container with Node 18+ —
 * reports to the orchestrator through the worker contract (./contract.ts). No
 * dependencies: global fetch only.
 */
import { WORKER_LIMITS } from "./contract";

/** What a worker reads from its environment (see WORKER_ENV_VARS). */
export interface WorkerEnv {
  jobId: string;
  attempt: number;
  jobType: string;
  deploymentId: string | null;
  /** Null when the worker runs outside an orchestrator: reports are then skipped. */
  callbackUrl: string | null;
  callbackToken: string | null;
  /** Names of the secrets this attempt may fetch once. */
  secrets: string[];
  /** W3C traceparent of the launch (TRACEPARENT), sent back on every report; null when traces are off. */
  traceparent: string | null;
}

export function readWorkerEnv(env: Record<string, string | undefined> = process.env): WorkerEnv {
  const attempt = Number(env.BLACKTREE_ATTEMPT);
  return {
    jobId: env.BLACKTREE_JOB_ID ?? "",
    attempt: Number.isInteger(attempt) && attempt > 0 ? attempt : 0,
    jobType: env.BLACKTREE_JOB_TYPE ?? "",
    deploymentId: env.BLACKTREE_DEPLOYMENT_ID || null,
    callbackUrl: env.BLACKTREE_CALLBACK_URL?.trim().replace(/\/+$/, "") || null,
    callbackToken: env.BLACKTREE_CALLBACK_TOKEN || null,
    secrets: (env.BLACKTREE_SECRETS ?? "").split(",").map((s) => s.trim()).filter(Boolean),
    traceparent: env.TRACEPARENT?.trim() || null,
  };
}

/** A worker's outcome: flat scalars (see the contract's result schema). */
export interface WorkerResult {
  success: boolean;
  imageUrl?: string | null;
  error?: string | null;
  message?: string;
  /** false: retrying cannot help (bad input); the attempt is not retried. */
  retryable?: boolean;
  [field: string]: string | number | boolean | null | undefined;
}

/** An answer of the orchestrator that is not a success, or no answer at all (`status` 0). */
export class CallbackError extends Error {
  constructor(
    readonly route: string,
    readonly status: number,
    /** The error `type` from the body (`FORBIDDEN`, …), when there was one. */
    readonly type: string | null,
    message: string,
  ) {
    super(message);
    this.name = "CallbackError";
  }

  /** Worth another try: no answer, 5xx, 429. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export interface WorkerClientOptions {
  /** Heartbeat period once `started()` was sent (default 10 s, or BLACKTREE_HEARTBEAT_MS); 0: none. */
  heartbeatMs?: number;
  /** Per request (default 10 s). */
  requestTimeoutMs?: number;
  /** Tries per report for retryable failures (default 4; `result` tries twice as often). */
  tries?: number;
  /** First delay between tries, doubling to at most 5 s (default 250 ms). */
  retryDelayMs?: number;
  /** Log lines are pushed at most this long after they were logged (default 500 ms). */
  logFlushMs?: number;
  /** Also write log lines to stdout/stderr, so the target's own log holds them (default true). */
  echo?: boolean;
  /** The client's own warnings (a report that failed for good); default: stderr with ⚠️. */
  onWarning?(message: string): void;
  /** The orchestrator said the attempt is no longer live (401/403): stop working. */
  onStale?(error: CallbackError): void;
}

const MAX_PENDING_LINES = 10_000;
const MAX_DELAY_MS = 5_000;

/** fetch() says only "fetch failed"; the reason (ECONNREFUSED, a timeout, …) is its cause. */
function describe(err: unknown): string {
  const e = err as { message?: unknown; cause?: { message?: unknown; code?: unknown } } | null;
  const message = typeof e?.message === "string" ? e.message : String(err);
  const cause = e?.cause && typeof e.cause.message === "string" ? e.cause.message || String(e.cause.code ?? "") : null;
  return cause ? `${message} (${cause})` : message;
}

export class WorkerClient {
  readonly env: WorkerEnv;
  /** Set once the orchestrator refused a report as stale (401/403): its job moved on. */
  stale: CallbackError | null = null;
  private readonly opts: Required<Omit<WorkerClientOptions, "onStale">>;
  private readonly secretValues = new Set<string>();
  private pending: string[] = [];
  private dropped = 0;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private readonly staleHandlers: Array<(error: CallbackError) => void> = [];
  /** Log pushes run one after another, so lines arrive in order. */
  private pushing: Promise<void> = Promise.resolve();

  constructor(env: WorkerEnv, opts: WorkerClientOptions = {}) {
    this.env = env;
    this.opts = {
      heartbeatMs: opts.heartbeatMs ?? (Number(process.env.BLACKTREE_HEARTBEAT_MS) || 10_000),
      requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
      tries: opts.tries ?? 4,
      retryDelayMs: opts.retryDelayMs ?? 250,
      logFlushMs: opts.logFlushMs ?? 500,
      echo: opts.echo ?? true,
      onWarning: opts.onWarning ?? ((message) => process.stderr.write(`⚠️ ${this.redact(message)}\n`)),
    };
    this.registerSecret(env.callbackToken);
    if (opts.onStale) this.staleHandlers.push(opts.onStale);
  }

  /** Also call `handler` once the orchestrator says the attempt is no longer live. */
  whenStale(handler: (error: CallbackError) => void): void {
    if (this.stale) handler(this.stale);
    else this.staleHandlers.push(handler);
  }

  /** The client for this process's environment. */
  static fromEnv(opts: WorkerClientOptions = {}, env: Record<string, string | undefined> = process.env): WorkerClient {
    return new WorkerClient(readWorkerEnv(env), opts);
  }

  /** Whether there is an orchestrator to report to (BLACKTREE_CALLBACK_URL is set). */
  get connected(): boolean {
    return this.env.callbackUrl !== null;
  }

  /**
   * Reports that the worker runs, and starts the heartbeats. Resolves true once the
   * orchestrator recorded it; never throws: a lost report costs latency only.
   */
  async started(): Promise<boolean> {
    const recorded = await this.report("POST", "/started", {});
    if (this.opts.heartbeatMs > 0 && !this.heartbeatTimer && this.connected && !this.stale) {
      this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatMs);
      this.heartbeatTimer.unref?.();
    }
    return recorded;
  }

  /** One heartbeat (one try: the next one follows anyway); true once recorded. */
  heartbeat(): Promise<boolean> {
    return this.report("POST", "/heartbeat", {}, 1);
  }

  /**
   * Logs a line (or several, split on newlines): redacted, echoed to stdout (or stderr),
   * and pushed to the orchestrator in batches.
   */
  log(text: string, stream: "stdout" | "stderr" = "stdout"): void {
    const lines = this.redact(text).split(/\r?\n/);
    if (this.opts.echo) (stream === "stderr" ? process.stderr : process.stdout).write(lines.join("\n") + "\n");
    if (!this.connected || this.stale) return;
    for (const line of lines) this.pending.push(line.slice(0, WORKER_LIMITS.logLineChars));
    if (this.pending.length > MAX_PENDING_LINES) {
      this.dropped += this.pending.length - MAX_PENDING_LINES;
      this.pending.splice(0, this.pending.length - MAX_PENDING_LINES);
    }
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => void this.flush(), this.opts.logFlushMs);
      this.flushTimer.unref?.();
    }
  }

  /** Pushes the lines logged so far; resolves once they were sent (or given up on). */
  flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const batch = this.pending;
    this.pending = [];
    if (this.dropped) {
      batch.unshift(`⚠️ ${this.dropped} log lines were dropped: the orchestrator did not take them in time`);
      this.dropped = 0;
    }
    this.pushing = this.pushing.then(async () => {
      for (let i = 0; i < batch.length && !this.stale; i += WORKER_LIMITS.logLinesPerRequest / 2) {
        await this.report("POST", "/log", { lines: batch.slice(i, i + WORKER_LIMITS.logLinesPerRequest / 2) });
      }
    });
    return this.pushing;
  }

  /**
   * The values of this attempt's secrets (GET /secrets, once per attempt); each value is
   * redacted from the log from now on. Throws a CallbackError when they cannot be had.
   */
  async secrets(): Promise<Record<string, string>> {
    const body = (await this.request("GET", "/secrets", undefined, this.opts.tries)) as { secrets?: unknown } | null;
    const secrets = body?.secrets;
    if (!secrets || typeof secrets !== "object") throw new CallbackError("/secrets", 200, null, "the secrets answer holds no secrets");
    for (const value of Object.values(secrets)) if (typeof value === "string") this.registerSecret(value);
    return secrets as Record<string, string>;
  }

  /**
   * Sends the outcome (after the pending log lines), retrying what is worth retrying.
   * Resolves true when the orchestrator recorded it; never throws.
   */
  async result(result: WorkerResult): Promise<boolean> {
    await this.flush();
    const clean: Record<string, string | number | boolean | null> = {};
    for (const [k, v] of Object.entries(result)) {
      if (v === undefined) continue;
      clean[k] = typeof v === "string" ? this.redact(v).slice(0, WORKER_LIMITS.resultStringChars) : v;
    }
    return this.report("POST", "/result", clean, this.opts.tries * 2);
  }

  /** Stops the heartbeats and pushes what is left of the log. */
  async close(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    await this.flush();
  }

  /** From now on this value never reaches the log or a result (values under 4 characters are ignored). */
  registerSecret(value: string | null | undefined): void {
    if (value && value.length >= 4) this.secretValues.add(value);
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secretValues) out = out.split(secret).join("***");
    return out;
  }

  /** A report that must not fail the worker: false (and a warning) when it could not be made. */
  private async report(method: "GET" | "POST", route: string, body: object, tries = this.opts.tries): Promise<boolean> {
    if (!this.connected || this.stale) return false;
    try {
      await this.request(method, route, body, tries);
      return true;
    } catch (err) {
      if (!this.stale) this.opts.onWarning(`could not report ${method} ${route}: ${describe(err)}`);
      return false;
    }
  }

  private async request(method: "GET" | "POST", route: string, body: object | undefined, tries: number): Promise<unknown> {
    if (!this.connected) throw new CallbackError(route, 0, null, "no BLACKTREE_CALLBACK_URL: this worker runs outside an orchestrator");
    if (this.stale) throw this.stale;
    let delay = this.opts.retryDelayMs;
    for (let attempt = 1; ; attempt++) {
      let error: CallbackError;
      let retryAfterMs = 0;
      try {
        const res = await fetch(this.env.callbackUrl + route, {
          method,
          headers: {
            authorization: `Bearer ${this.env.callbackToken ?? ""}`,
            ...(body ? { "content-type": "application/json" } : {}),
            // The callbacks join the job's trace (the context the worker was launched with).
            ...(this.env.traceparent ? { traceparent: this.env.traceparent } : {}),
          },
          body: body ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(this.opts.requestTimeoutMs),
        });
        const text = await res.text();
        let parsed: unknown = null;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          parsed = null;
        }
        if (res.ok) return parsed;
        const e = (parsed as { error?: { type?: unknown; message?: unknown } } | null)?.error;
        error = new CallbackError(route, res.status, typeof e?.type === "string" ? e.type : null, `${method} ${route} answered HTTP ${res.status}${typeof e?.message === "string" ? `: ${e.message}` : ""}`);
        retryAfterMs = Number(res.headers.get("retry-after")) * 1000 || 0;
      } catch (err) {
        error = new CallbackError(route, 0, null, `${method} ${route} failed: ${describe(err)}`);
      }
      if (error.status === 401 || (error.status === 403 && route !== "/secrets")) {
        this.markStale(error);
        throw error;
      }
      if (!error.retryable || attempt >= tries) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.max(delay, retryAfterMs)));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }

  private markStale(error: CallbackError): void {
    if (this.stale) return;
    this.stale = error;
    this.pending = [];
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    for (const handler of this.staleHandlers) handler(error);
  }
}

export interface RunWorkerOptions extends WorkerClientOptions {
  /** The environment to read (default process.env). */
  env?: Record<string, string | undefined>;
}

/**
 * Runs a worker's main function under the contract: `started`, heartbeats, then `main`'s
 * result (or its error as `{ success: false, error }`) sent once, then the process exits
 * 0 on success and 1 otherwise. When the orchestrator says the attempt is no longer live,
 * the worker exits 1 at once (unless `onStale` says otherwise). SIGTERM is left to the
 * worker (Node's default ends it with 143).
 */
export async function runWorker(main: (worker: WorkerClient) => Promise<WorkerResult> | WorkerResult, opts: RunWorkerOptions = {}): Promise<never> {
  const worker = WorkerClient.fromEnv(
    {
      onStale: (err) => {
        process.stderr.write(`❌ this attempt is no longer live (${err.message}): stopping\n`);
        process.exit(1);
      },
      ...opts,
    },
    opts.env,
  );
  await worker.started();
  let result: WorkerResult;
  try {
    result = await main(worker);
  } catch (err) {
    result = { success: false, error: err instanceof Error ? err.message : String(err) };
  }
  if (result.success) worker.log(`✅ ${result.message ?? "done"}`);
  else worker.log(`❌ ${result.error ?? result.message ?? "failed"}`, "stderr");
  await worker.result(result);
  await worker.close();
  process.exit(result.success ? 0 : 1);
}
