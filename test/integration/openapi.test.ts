import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { openApiDocument, openApiPath } from "../../lib/gateway/openapi";
import { ref, ROUTES, type RouteSpec } from "../../lib/gateway/routes";
import { authHeader, ROOT, startNode, tempDir, TestNode } from "../support/orchestrator";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * GET /api/openapi.json against a real node: the document is valid OpenAPI 3.1 (checked by
 * @seriousme/openapi-schema-validator), names every loaded task type, and every route of
 * the table answers, for real, with a status and a body the document describes.
 */
const SCRIPTS = path.join(ROOT, "test/support/plugins/script-plugin.ts");
let node: TestNode;
let doc: any;
let repo: string;
let vhost: TestVhost;
const dir = tempDir("bt-h14b-openapi-");

interface Seen {
  route: RouteSpec;
  status: number;
  contentType: string;
  body: unknown;
  text: string;
  requestBody?: unknown;
}
const seen: Seen[] = [];

function routeOf(action: string): RouteSpec {
  const r = ROUTES.find((x) => x.action === action);
  if (!r) throw new Error(`no route ${action}`);
  return r;
}

/** One real call of a route; its answer is checked against the document at the end. */
async function call(action: string, opts: { id?: string; query?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const route = routeOf(action);
  const url = `${node.url}${openApiPath(route).replace(/\{[a-z]+\}/gi, encodeURIComponent(opts.id ?? "x"))}${opts.query ?? ""}`;
  const headers: Record<string, string> = { ...(route.access === "worker" || route.access === "public" ? {} : authHeader("admin")), ...(opts.body !== undefined ? { "content-type": "application/json" } : {}), ...opts.headers };
  for (const k of Object.keys(headers)) if (headers[k] === "") delete headers[k];
  const abort = new AbortController();
  const res = await fetch(url, { method: route.method, headers, signal: abort.signal, body: opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body) });
  const text = res.headers.get("content-type")?.startsWith("text/event-stream") ? await firstEvent(res, abort) : await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(res.headers.get("content-type")?.startsWith("text/event-stream") ? eventData(text) : text);
  } catch {
    body = null;
  }
  const s: Seen = { route, status: res.status, contentType: (res.headers.get("content-type") ?? "").split(";")[0].trim(), body, text, requestBody: opts.body };
  seen.push(s);
  return s;
}

/** A stream never ends: its first event (a block ending in a blank line), then the request is dropped. */
async function firstEvent(res: Response, abort: AbortController): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (value) text += decoder.decode(value, { stream: true });
    // Comments (`: heartbeat`) are not events.
    const events = text.split(/\r?\n\r?\n/).filter((block, i, all) => i < all.length - 1 && block.split(/\r?\n/).some((l) => l.startsWith("data:")));
    if (events.length || done) {
      abort.abort();
      return events[0] ?? text;
    }
  }
}

const eventData = (block: string) => block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");

async function waitState(id: string, states: string[]) {
  return waitFor(
    async () => {
      const r = await node.http("GET", `/api/jobs/${id}`);
      return states.includes(r.body?.job?.state) ? r.body : null;
    },
    { timeout: 30_000, message: `job ${id} never reached ${states.join("|")}` },
  );
}

beforeAll(async () => {
  repo = path.join(dir, "hello");
  execFileSync("bash", [path.join(ROOT, "examples/create-local-repo.sh"), repo]);
  // With AMQP (a vhost of its own): replaying a dead letter publishes it to execute.queue.
  vhost = createVhost("h14b-openapi");
  node = await startNode({ env: { AMQP_URL: vhost.url }, configure: (c) => c.plugins.push({ use: SCRIPTS }) });
  const res = await node.http("GET", "/api/openapi.json", undefined, authHeader("submitter"));
  expect(res.status).toBe(200);
  doc = res.body;
}, 60_000);

afterAll(async () => {
  await node?.stop();
  vhost?.remove();
});

test("every route of the table has an OpenAPI description", () => {
  const missing = ROUTES.filter((r) => !r.doc).map((r) => `${r.method} ${openApiPath(r)}`);
  expect(missing).toEqual([]);
  const documented = Object.entries(doc.paths as Record<string, object>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
  expect(documented.sort()).toEqual(ROUTES.map((r) => `${r.method} ${openApiPath(r)}`).sort());
});

/** @seriousme/openapi-schema-validator's verdict. It is an ES module: it runs in its own Node process. */
function validateDocument(document: unknown): { valid: boolean; version: string; errors: unknown } {
  const file = path.join(dir, `openapi-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(document));
  const script = `import { Validator } from "@seriousme/openapi-schema-validator";
const v = new Validator();
const res = await v.validate(JSON.parse((await import("node:fs")).readFileSync(process.argv[1], "utf8")));
process.stdout.write(JSON.stringify({ valid: res.valid, version: v.version, errors: res.errors ?? null }));`;
  return JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script, file], { cwd: ROOT, encoding: "utf8" }));
}

test("the document is valid OpenAPI 3.1", () => {
  expect(validateDocument(doc)).toEqual({ valid: true, version: "3.1", errors: null });
  // The validator can say no: a response without its required description.
  const broken = JSON.parse(JSON.stringify(doc));
  delete broken.paths["/api/jobs"].get.responses["200"].description;
  expect(validateDocument(broken).valid).toBe(false);
});

test("a server-sent event stream is described as text/event-stream with its events' data schema, and the document stays valid", () => {
  const stream: RouteSpec = { mount: "/api", method: "GET", path: "jobs/:id/events", action: "jobEvents", access: "submitter", doc: { summary: "A job's events, then live", responses: { 200: { eventStream: ref("Event") } }, errors: [404] } };
  const withStream = openApiDocument(node.rt.registry, { version: "0.0.0", routes: [...ROUTES, stream] }) as any;
  const media = withStream.paths["/api/jobs/{id}/events"].get.responses["200"].content;
  expect(Object.keys(media)).toEqual(["text/event-stream"]);
  expect(media["text/event-stream"]["x-event-data"]).toEqual(ref("Event"));
  expect(validateDocument(withStream)).toEqual({ valid: true, version: "3.1", errors: null });
});

test("every loaded task type's params are in the job request schema, and the worker callbacks are the SDK's contract", () => {
  const variants = (doc.components.schemas.JobRequest.oneOf as Array<{ $ref: string }>).map((r) => r.$ref.split("/").pop());
  const loaded = [...node.rt.registry.taskTypes.keys()];
  expect(loaded).toEqual(expect.arrayContaining(["build", "deploy", "stop", "test", "script"]));
  expect(variants.sort()).toEqual(loaded.map((n) => `JobRequest_${n}`).sort());
  const build = doc.components.schemas.JobRequest_build;
  expect(build.properties.repository).toEqual({ type: "string", minLength: 1, maxLength: 2048 });
  expect(build.properties.deploymentId.pattern).toBe("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");
  expect(build.required).toEqual(expect.arrayContaining(["deploymentId", "repository"]));
  expect(doc.components.schemas.JobRequest_script.properties.script).toEqual({ type: "string", maxLength: 10_000 });
  expect(doc.paths["/api/worker/result"].post.requestBody.content["application/json"].schema.required).toEqual(["success"]);
  expect(doc.paths["/api/worker/result"].post.security).toEqual([{ workerToken: [] }]);
});

test("every route's real answers match the document", async () => {
  // Jobs: submit (202, then 200 for the same key), refusals, list, one, logs.
  const buildBody = { type: "build", deploymentId: "openapi", repository: repo, branch: "main", dockerFilePath: "docker/Dockerfile.missing", contextDir: "." };
  const submitted = await call("submitJob", { body: buildBody, headers: { "idempotency-key": "openapi-build-1" } });
  expect(submitted.status).toBe(202);
  expect((await call("submitJob", { body: buildBody, headers: { "idempotency-key": "openapi-build-1" } })).status).toBe(200);
  expect((await call("submitJob", { body: { ...buildBody, autoDeploy: "perhaps" } })).status).toBe(422);
  expect((await call("submitJob", { body: "{ not json" })).status).toBe(400);
  expect((await call("submitJob", { body: buildBody, headers: { authorization: "Bearer wrong-key-0123456789" } })).status).toBe(401);
  const failedId = (submitted.body as any).job.id;
  await waitState(failedId, ["failed"]);
  expect((await call("listJobs", { query: "?limit=10" })).status).toBe(200);
  expect((await call("listJobs", { query: "?limit=0" })).status).toBe(422);
  expect((await call("getJob", { id: failedId })).status).toBe(200);
  expect((await call("getJob", { id: "no-such-job" })).status).toBe(404);
  expect((await call("jobLogs", { id: failedId })).status).toBe(200);
  expect((await call("jobLogs", { id: "no-such-job" })).status).toBe(404);
  // Streams (their first event is checked against the document's event schema), stream tokens, who am I, stats.
  expect((await call("jobEvents", { id: failedId })).status).toBe(200);
  expect((await call("jobEvents", { id: "no-such-job" })).status).toBe(404);
  expect((await call("jobEvents", { id: failedId, headers: { "last-event-id": "not-a-position" } })).status).toBe(422);
  expect((await call("events", { query: "?lastEventId=0" })).status).toBe(200);
  expect((await call("events", { query: "?lastEventId=0", headers: authHeader("submitter") })).status).toBe(403);
  expect((await call("createStreamToken", { body: { jobId: failedId } })).status).toBe(200);
  expect((await call("createStreamToken", { body: { jobId: "no-such-job" } })).status).toBe(404);
  expect((await call("createStreamToken", { body: { scope: "events" }, headers: authHeader("submitter") })).status).toBe(403);
  expect((await call("whoami")).status).toBe(200);
  expect((await call("jobStats")).status).toBe(200);
  expect((await call("retryJob", { id: failedId })).status).toBe(200);
  expect((await call("retryJob", { id: "no-such-job" })).status).toBe(404);
  await waitState(failedId, ["failed"]);

  // A worker that hands its callback credentials to the test and waits.
  const creds = path.join(dir, "creds.json");
  const script = `require("fs").writeFileSync(${JSON.stringify(creds)}, JSON.stringify({ url: process.env.BLACKTREE_CALLBACK_URL, token: process.env.BLACKTREE_CALLBACK_TOKEN })); setInterval(() => {}, 1000);`; // alive until the test cancels it
  const running = await call("submitJob", { body: { type: "script", deploymentId: "openapi-worker", script } });
  expect(running.status).toBe(202);
  const runningId = (running.body as any).job.id;
  const { token } = await waitFor(() => (fs.existsSync(creds) ? (JSON.parse(fs.readFileSync(creds, "utf8")) as { url: string; token: string }) : null), { timeout: 20_000, message: "the worker never wrote its credentials" });
  const worker = { authorization: `Bearer ${token}` };
  expect((await call("workerStarted", { body: {}, headers: worker })).status).toBe(200);
  expect((await call("workerHeartbeat", { body: {}, headers: worker })).status).toBe(200);
  expect((await call("workerLog", { body: { lines: ["one", "two"] }, headers: worker })).status).toBe(200);
  expect((await call("workerSecrets", { headers: worker })).status).toBe(200);
  expect((await call("workerSecrets", { headers: worker })).status).toBe(403);
  expect((await call("workerHeartbeat", { body: {}, headers: { authorization: "Bearer not-a-token" } })).status).toBe(401);
  expect((await call("workerResult", { body: { success: true, message: "described" }, headers: worker })).status).toBe(200);
  expect((await call("cancelJob", { id: runningId, body: { reason: "the OpenAPI test is done with it" }, headers: authHeader("submitter") })).status).toBe(403);
  expect((await call("cancelJob", { id: runningId, body: { reason: "the OpenAPI test is done with it" } })).status).toBe(200);
  expect((await call("workerHeartbeat", { body: {}, headers: worker })).status).toBe(403);
  await waitState(runningId, ["cancelled"]);
  expect((await call("cancelJob", { id: runningId, body: {} })).status).toBe(409);

  // Operators' and admins' routes, health, metrics, this document.
  expect((await call("deadLetters", { query: "?limit=5" })).status).toBe(200);
  expect((await call("deadLetters", { query: "?limit=x" })).status).toBe(422);
  expect((await call("replayDeadLetter", { id: "no-such-letter" })).status).toBe(404);
  const letter = { source: "amqp:execute.queue", reason: "NO_DEPLOYMENT_ID", detail: "the message has no deploymentId", receivedAt: Date.now() };
  await node.rt.store.addDeadLetter({ ...letter, id: "dl-openapi-kept", body: JSON.stringify({ type: "teleport" }), properties: { messageId: "m1" } });
  await node.rt.store.addDeadLetter({ ...letter, id: "dl-openapi-unkept", body: "", properties: { bodyKept: false } });
  expect((await call("replayDeadLetter", { id: "dl-openapi-kept" })).status).toBe(200);
  expect((await call("replayDeadLetter", { id: "dl-openapi-unkept" })).status).toBe(409);
  expect((await call("plugins")).status).toBe(200);
  expect((await call("plugins", { headers: authHeader("submitter") })).status).toBe(403);
  expect((await call("openApi", { headers: authHeader("submitter") })).status).toBe(200);
  expect((await call("openApi", { headers: { authorization: "" } })).status).toBe(401);
  expect((await call("health")).status).toBe(200);
  expect((await call("metrics")).status).toBe(200);
  expect((await call("metrics", { headers: authHeader("submitter") })).status).toBe(403);

  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, "openapi");
  const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
  const problems: string[] = [];
  for (const s of seen) {
    const p = openApiPath(s.route);
    const method = s.route.method.toLowerCase();
    const what = `${s.route.method} ${p} → ${s.status}`;
    let response = doc.paths[p]?.[method]?.responses?.[String(s.status)];
    if (!response) {
      problems.push(`${what}: status not documented`);
      continue;
    }
    let base = pointer("paths", p, method, "responses", String(s.status));
    if (response.$ref) {
      base = response.$ref.slice(2);
      response = base.split("/").reduce((o: any, k: string) => o[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
    }
    if (!response.content?.[s.contentType]) {
      problems.push(`${what}: content type ${s.contentType} not documented (${Object.keys(response.content ?? {}).join(", ")})`);
      continue;
    }
    const stream = s.contentType === "text/event-stream";
    const validate = ajv.compile({ $ref: `openapi#/${base}/${pointer("content", s.contentType, stream ? "x-event-data" : "schema")}` });
    const value = s.contentType === "application/json" || stream ? s.body : s.text;
    if (!validate(value)) problems.push(`${what}: ${ajv.errorsText(validate.errors)} in ${s.text.slice(0, 300)}`);
    // What was accepted was a request the document allows.
    const request = doc.paths[p][method].requestBody;
    if (s.status < 300 && request && typeof s.requestBody === "object") {
      const checkRequest = ajv.compile({ $ref: `openapi#/${pointer("paths", p, method, "requestBody", "content", "application/json", "schema")}` });
      if (!checkRequest(s.requestBody)) problems.push(`${what}: the accepted request body does not match the document: ${ajv.errorsText(checkRequest.errors)}`);
    }
  }
  expect(problems).toEqual([]);
  // Every route answered at least once with success, and its error answers were seen too.
  const succeeded = new Set(seen.filter((s) => s.status < 300).map((s) => s.route.action));
  expect(ROUTES.filter((r) => !succeeded.has(r.action)).map((r) => r.action)).toEqual([]);
});
