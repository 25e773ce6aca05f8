import http from "node:http";
import type { AddressInfo } from "node:net";
import { CallbackError, readWorkerEnv, WorkerClient, type WorkerClientOptions } from "@blacktree/sdk/worker";

/**
 * The worker client's retries, batching and stale handling, against a real HTTP server
 * that answers as scripted (what an orchestrator under trouble answers).
 */
interface Seen {
  method: string;
  path: string;
  authorization?: string;
  traceparent?: string | string[];
  body: any;
}

let server: http.Server;
let url: string;
let seen: Seen[];
/** Status codes to answer, per route, in order; then 200. */
let script: Record<string, number[]>;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const route = (req.url ?? "").replace(/^\/api\/worker/, "");
      seen.push({ method: req.method!, path: route, authorization: req.headers.authorization, traceparent: req.headers.traceparent, body: body ? JSON.parse(body) : null });
      const status = script[route]?.shift() ?? 200;
      res.statusCode = status;
      res.setHeader("content-type", "application/json");
      if (status >= 400) res.end(JSON.stringify({ error: { type: status === 403 ? "FORBIDDEN" : status === 401 ? "UNAUTHORIZED" : "STORE_UNAVAILABLE", message: `scripted ${status}` } }));
      else res.end(route === "/secrets" ? JSON.stringify({ secrets: { token: "s3cret-value" } }) : "{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/worker`;
});

afterAll(() => new Promise((resolve) => server.close(resolve)));

beforeEach(() => {
  seen = [];
  script = {};
});

const warnings: string[] = [];
function client(opts: WorkerClientOptions = {}, env: Record<string, string> = {}): WorkerClient {
  return new WorkerClient(readWorkerEnv({ BLACKTREE_CALLBACK_URL: url, BLACKTREE_CALLBACK_TOKEN: "token-abcdef", BLACKTREE_JOB_ID: "job_1", BLACKTREE_ATTEMPT: "2", ...env }), {
    echo: false,
    retryDelayMs: 5,
    heartbeatMs: 0,
    onWarning: (m) => warnings.push(m),
    ...opts,
  });
}

describe("the worker client", () => {
  test("reads its environment", () => {
    expect(readWorkerEnv({ BLACKTREE_JOB_ID: "j", BLACKTREE_ATTEMPT: "3", BLACKTREE_JOB_TYPE: "build", BLACKTREE_DEPLOYMENT_ID: "", BLACKTREE_CALLBACK_URL: "http://x/api/worker/", BLACKTREE_CALLBACK_TOKEN: "t", BLACKTREE_SECRETS: "token, key" })).toEqual({
      jobId: "j",
      attempt: 3,
      jobType: "build",
      deploymentId: null,
      callbackUrl: "http://x/api/worker",
      callbackToken: "t",
      secrets: ["token", "key"],
      traceparent: null,
    });
  });

  test("sends the traceparent it was launched with on every report", async () => {
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const w = client({}, { TRACEPARENT: traceparent });
    await w.started();
    await w.result({ success: true });
    await w.close();
    expect(seen.map((c) => [c.path, c.traceparent])).toEqual([
      ["/started", traceparent],
      ["/result", traceparent],
    ]);
  });

  test("retries a result through 5xx answers, with the token as bearer and secrets redacted", async () => {
    script["/result"] = [503, 502];
    const w = client();
    const secrets = await w.secrets();
    expect(secrets).toEqual({ token: "s3cret-value" });
    expect(await w.result({ success: true, message: "used s3cret-value and token-abcdef", n: 1 })).toBe(true);
    const results = seen.filter((s) => s.path === "/result");
    expect(results).toHaveLength(3);
    expect(results[2].body).toEqual({ success: true, message: "used *** and ***", n: 1 });
    expect(seen.every((s) => s.authorization === "Bearer token-abcdef")).toBe(true);
  });

  test("pushes log lines in order, in batches the gateway takes, redacted, before the result", async () => {
    const w = client({ logFlushMs: 10_000 });
    w.registerSecret("hunter2-secret");
    for (let i = 0; i < 1_200; i++) w.log(`line ${i}${i === 7 ? " hunter2-secret" : ""}`);
    await w.result({ success: true });
    const logs = seen.filter((s) => s.path === "/log");
    expect(logs.map((l) => l.body.lines.length)).toEqual([500, 500, 200]);
    const lines = logs.flatMap((l) => l.body.lines);
    expect(lines[7]).toBe("line 7 ***");
    expect(lines.at(-1)).toBe("line 1199");
    expect(seen.at(-1)!.path).toBe("/result");
  });

  test("a 401 or 403 marks the attempt stale once: no retry, no further reports, the handlers told", async () => {
    script["/started"] = [403];
    const told: CallbackError[] = [];
    const w = client({ onStale: (e) => told.push(e) });
    w.whenStale((e) => told.push(e));
    expect(await w.started()).toBe(false);
    expect(w.stale).toMatchObject({ status: 403, type: "FORBIDDEN" });
    expect(told).toHaveLength(2);
    w.log("after");
    expect(await w.result({ success: true })).toBe(false);
    expect(seen.map((s) => s.path)).toEqual(["/started"]);

    script["/heartbeat"] = [401];
    const other = client();
    expect(await other.heartbeat()).toBe(false);
    expect(other.stale?.status).toBe(401);
  });

  test("a refused secrets fetch throws without making the attempt stale; other 4xx are not retried", async () => {
    script["/secrets"] = [403];
    const w = client();
    await expect(w.secrets()).rejects.toMatchObject({ name: "CallbackError", status: 403, type: "FORBIDDEN" });
    expect(w.stale).toBeNull();
    script["/log"] = [400];
    w.log("one");
    await w.flush();
    expect(seen.filter((s) => s.path === "/log")).toHaveLength(1);
    expect(warnings.at(-1)).toMatch(/could not report POST \/log: POST \/log answered HTTP 400: scripted 400/);
  });

  test("no answer at all is retried, then given up with a warning; the result says it was not recorded", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const w = client({ tries: 2 }, { BLACKTREE_CALLBACK_URL: `http://127.0.0.1:${port}/api/worker` });
    expect(await w.result({ success: true })).toBe(false);
    expect(warnings.at(-1)).toMatch(/could not report POST \/result: POST \/result failed: fetch failed \(.*ECONNREFUSED/);
  });

  test("without a callback URL it only logs: reports are skipped, secrets cannot be had", async () => {
    const w = new WorkerClient(readWorkerEnv({}), { echo: false });
    expect(w.connected).toBe(false);
    expect(await w.started()).toBe(false);
    expect(await w.result({ success: true })).toBe(false);
    await expect(w.secrets()).rejects.toBeInstanceOf(CallbackError);
    expect(seen).toEqual([]);
  });
});
