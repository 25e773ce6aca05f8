import { CliError, EXIT } from "./exit-codes";

/** The API's error body: `{ error: { type, message, fields? } }`. */
export interface ApiErrorBody {
  type: string;
  message: string;
  fields?: Array<{ field: string; message: string }>;
}

/** A refusal from the API, with its HTTP status and coded type. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly fields: Array<{ field: string; message: string }> = [],
  ) {
    super(message, EXIT.api, fields.map((f) => `${f.field}: ${f.message}`));
    this.name = "ApiError";
  }
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * The gateway's REST API over fetch. The key travels only in the `Authorization` header;
 * no message this client builds contains it.
 */
export class ApiClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly key: string | null,
  ) {
    let parsed: URL;
    try {
      parsed = new URL(baseUrl);
    } catch {
      throw new CliError(`--url '${baseUrl}' is not a URL (e.g. http://127.0.0.1:3000)`, EXIT.usage);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new CliError(`--url '${baseUrl}' must be http:// or https://`, EXIT.usage);
    if (parsed.username || parsed.password) throw new CliError("--url must not carry credentials: use --key or BLACKTREE_API_KEY", EXIT.usage);
    this.baseUrl = parsed.href.replace(/\/+$/, "");
  }

  url(route: string, query: RequestOptions["query"] = {}): string {
    const u = new URL(this.baseUrl + route);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") u.searchParams.set(k, String(v));
    return u.href;
  }

  /** One request; the parsed JSON answer, or an ApiError / connection CliError. */
  async request<T = any>(method: "GET" | "POST", route: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, route, opts);
    const text = await res.text();
    if (!res.ok) throw this.refusal(res.status, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`${method} ${route}: the answer is not JSON (HTTP ${res.status}); is ${this.baseUrl} a Blacktree gateway?`, EXIT.api);
    }
  }

  /** The raw response of a request (for event streams); non-2xx is thrown as an ApiError. */
  async open(route: string, opts: RequestOptions = {}): Promise<Response> {
    const res = await this.send("GET", route, { ...opts, headers: { accept: "text/event-stream", ...opts.headers } });
    if (!res.ok) throw this.refusal(res.status, await res.text().catch(() => ""));
    return res;
  }

  private async send(method: string, route: string, opts: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json", ...opts.headers };
    if (this.key) headers.authorization = `Bearer ${this.key}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    try {
      return await fetch(this.url(route, opts.query), { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: opts.signal });
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      throw connectionError(this.baseUrl, err);
    }
  }

  private refusal(status: number, text: string): ApiError {
    let body: ApiErrorBody | undefined;
    try {
      body = (JSON.parse(text) as { error?: ApiErrorBody }).error;
    } catch {
      body = undefined;
    }
    const type = body?.type ?? `HTTP_${status}`;
    const message = body?.message ?? (text.trim().slice(0, 200) || `HTTP ${status}`);
    return new ApiError(status, type, `${status} ${type}: ${message}${hintOf(status, this.key !== null)}`, body?.fields ?? []);
  }
}

/** What to do about a refusal a user can fix. */
function hintOf(status: number, keyGiven: boolean): string {
  if (status === 401) return keyGiven ? " (the key was not accepted: check --key / BLACKTREE_API_KEY)" : " (no key given: pass --key, --key-file or set BLACKTREE_API_KEY)";
  if (status === 403) return " (this key's role may not do this)";
  return "";
}

/** A fetch failure as one line: what could not be reached and why (ECONNREFUSED, ENOTFOUND, …). */
export function connectionError(baseUrl: string, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  return new CliError(`cannot reach ${baseUrl}: ${why}`, EXIT.connection);
}
