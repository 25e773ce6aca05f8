import { log, registerSecret } from "./log";
import { BuildFailure, EXIT_FAILURE, type BuildResult } from "./result";

const REQUEST_TIMEOUT_MS = 10_000;
/** Well under any sensible heartbeatTimeout; overridable for tests and slow networks. */
const HEARTBEAT_EVERY_MS = Number(process.env.BLACKTREE_HEARTBEAT_MS) || 10_000;
const RESULT_ATTEMPTS = 3;
const RESULT_RETRY_DELAY_MS = 500;

/** fetch() says only "fetch failed"; the reason (ECONNREFUSED, a timeout, …) is its cause. */
function describe(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
}

/**
 * The worker's channel to the orchestrator's gateway, authenticated with a token scoped
 * to this job and attempt. Only the secrets fetch is fatal when it fails: the
 * orchestrator follows the worker through its target (exit code) anyway.
 */
export class Callback {
  private readonly baseUrl: string;

  constructor(baseUrl: string, private readonly token: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    registerSecret(token);
  }

  static fromEnv(env: NodeJS.ProcessEnv): Callback | null {
    const url = env.BLACKTREE_CALLBACK_URL?.trim();
    return url ? new Callback(url, env.BLACKTREE_CALLBACK_TOKEN ?? "") : null;
  }

  async started(): Promise<void> {
    await this.request("POST", "/started", {}).catch((err: Error) => log.warn(`could not report "started": ${describe(err)}`));
  }

  /** Beats every `everyMs` until the process ends (unref'd), so heartbeatTimeout can tell a silent worker. */
  startHeartbeats(everyMs = HEARTBEAT_EVERY_MS): void {
    setInterval(() => {
      this.request("POST", "/heartbeat", {}).catch((err: Error) => log.warn(`could not send a heartbeat: ${describe(err)}`));
    }, everyMs).unref();
  }

  async secrets(): Promise<Record<string, string>> {
    let body: unknown;
    try {
      body = await (await this.request("GET", "/secrets")).json();
    } catch (err) {
      throw new BuildFailure(`could not fetch the build's secrets: ${describe(err as Error)}`, EXIT_FAILURE);
    }
    const secrets = (body as { secrets?: unknown } | null)?.secrets;
    if (!secrets || typeof secrets !== "object") throw new BuildFailure("the secrets response holds no secrets", EXIT_FAILURE, false);
    for (const value of Object.values(secrets)) if (typeof value === "string") registerSecret(value);
    return secrets as Record<string, string>;
  }

  async result(result: BuildResult): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.request("POST", "/result", result);
        return;
      } catch (err) {
        if (attempt >= RESULT_ATTEMPTS) {
          log.warn(`could not report the result: ${describe(err as Error)}`);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, RESULT_RETRY_DELAY_MS * attempt));
      }
    }
  }

  private async request(method: "GET" | "POST", path: string, body?: object): Promise<Response> {
    const response = await fetch(this.baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`${method} ${path} answered HTTP ${response.status}`);
    return response;
  }
}
