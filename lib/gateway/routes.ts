import type { Role } from "../auth/roles";

/** Who may call a route: an API key role (or above), a worker token, or anyone. */
export type Access = Role | "worker" | "public";

/** A JSON Schema (2020-12, as OpenAPI 3.1 takes it). */
export type Schema = Record<string, unknown>;

/** What a route answers with one status: a JSON body, plain text, or a server-sent event stream. */
export type ResponseDoc = Schema | { text: string } | { eventStream: Schema };

/**
 * A route's OpenAPI description (lib/gateway/openapi.ts builds the document from these):
 * what it is for, what it takes, what it answers. Errors are all `{ error: { type, message, fields? } }`.
 */
export interface RouteDoc {
  summary: string;
  /** Query parameters (all optional), name → schema. */
  query?: Record<string, Schema>;
  /** The JSON body; `jobRequest`: a job of any loaded task type (one schema per type). */
  body?: Schema | "jobRequest";
  /** Success statuses → their answers. */
  responses: Record<number, ResponseDoc>;
  /** Error statuses this route answers besides the ones its access brings (401, 403, 429, 503). */
  errors?: number[];
}

export interface RouteSpec {
  /** The moleculer-web route the alias belongs to. */
  mount: "/api" | "/api/worker" | "/";
  method: "GET" | "POST";
  /** Relative to the mount, with `:params`. */
  path: string;
  /** Action of the gateway service. */
  action: string;
  access: Access;
  /**
   * A stream route (Server-Sent Events): it also accepts a stream token of this scope as
   * `?token=` (browsers' EventSource cannot set headers); no other route accepts one.
   */
  streamToken?: "job" | "events";
  /**
   * Its OpenAPI description; `worker-contract`: described by the SDK's worker contract
   * (`workerOpenApiPaths()`), the one definition workers are written against. Optional for
   * the type, required by test/integration/openapi.test.ts for every route.
   */
  doc?: RouteDoc | "worker-contract";
}

/** A component schema of the OpenAPI document (lib/gateway/openapi.ts). */
export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const limit = { type: "integer", minimum: 1, maximum: 500 };
const reasonBody = { type: "object", properties: { reason: { type: "string", maxLength: 500 } } };

/**
 * Every REST route and who may call it: the gateway builds its aliases from this table
 * and checks access against it, the access-matrix test walks it, and the OpenAPI document
 * is generated from it, so a new route cannot be added without a declared role.
 */
export const ROUTES: readonly RouteSpec[] = [
  {
    mount: "/api", method: "POST", path: "jobs", action: "submitJob", access: "submitter",
    doc: { summary: "Submit a job (idempotent on jobId, idempotencyKey or the Idempotency-Key header): 202 when stored, 200 with the stored job when the key was seen", body: "jobRequest", responses: { 202: ref("Submitted"), 200: ref("Submitted") }, errors: [400, 409, 413, 422] },
  },
  {
    mount: "/api", method: "GET", path: "jobs", action: "listJobs", access: "submitter",
    doc: { summary: "List jobs, newest first (a submitter sees its own)", query: { state: ref("JobState"), type: { type: "string" }, deploymentId: { type: "string" }, cursor: { type: "string" }, limit }, responses: { 200: ref("JobPage") }, errors: [422] },
  },
  { mount: "/api", method: "GET", path: "jobs/:id", action: "getJob", access: "submitter", doc: { summary: "A job with its attempts and history", responses: { 200: ref("JobDetail") }, errors: [404] } },
  {
    mount: "/api", method: "GET", path: "jobs/:id/logs", action: "jobLogs", access: "submitter", streamToken: "job",
    doc: { summary: "Each attempt's log lines; with follow=1 a stream of them (Server-Sent Events, `event: log`) until the job ends", query: { follow: { type: "string", enum: ["0", "1"] } }, responses: { 200: ref("JobLogs") }, errors: [404, 422] },
  },
  {
    mount: "/api", method: "GET", path: "jobs/:id/events", action: "jobEvents", access: "submitter", streamToken: "job",
    doc: { summary: "The job's history, then its events live (Server-Sent Events: id = outbox position, resume with Last-Event-ID; `event: end` after the final one)", query: { lastEventId: { type: "string" }, token: { type: "string" } }, responses: { 200: { eventStream: ref("Event") } }, errors: [404, 422] },
  },
  {
    mount: "/api", method: "GET", path: "events", action: "events", access: "operator", streamToken: "events",
    doc: { summary: "Every job's events live (Server-Sent Events), filtered by deployment, type and the state entered", query: { deploymentId: { type: "string" }, type: { type: "string" }, state: ref("JobState"), lastEventId: { type: "string" }, token: { type: "string" } }, responses: { 200: { eventStream: ref("Event") } }, errors: [422] },
  },
  {
    mount: "/api", method: "POST", path: "stream-tokens", action: "createStreamToken", access: "submitter",
    doc: { summary: "A short-lived token (60 s to connect) for one job's streams or, for operators, the event stream: for browsers' EventSource, which cannot send headers", body: { type: "object", properties: { jobId: { type: "string" }, scope: { type: "string", enum: ["events"] } } }, responses: { 200: { type: "object", required: ["token", "expiresAt"], properties: { token: { type: "string" }, expiresAt: { type: "string", format: "date-time" } } } }, errors: [403, 404, 422] },
  },
  { mount: "/api", method: "GET", path: "whoami", action: "whoami", access: "submitter", doc: { summary: "The calling key's name and role", responses: { 200: { type: "object", required: ["name", "role"], properties: { name: { type: "string" }, role: { type: "string", enum: ["submitter", "operator", "admin"] } } } } } },
  { mount: "/api", method: "GET", path: "stats", action: "jobStats", access: "submitter", doc: { summary: "Jobs finished per minute and their durations over the last hour (a submitter's own jobs)", responses: { 200: { type: "object" } } } },
  { mount: "/api", method: "POST", path: "jobs/:id/cancel", action: "cancelJob", access: "operator", doc: { summary: "Cancel a job that has not ended", body: reasonBody, responses: { 200: ref("JobAnswer") }, errors: [404, 409] } },
  { mount: "/api", method: "POST", path: "jobs/:id/retry", action: "retryJob", access: "operator", doc: { summary: "Run a failed, timed-out or cancelled job again (a new attempt)", responses: { 200: ref("JobAnswer") }, errors: [404, 409] } },
  { mount: "/api", method: "GET", path: "dead-letters", action: "deadLetters", access: "operator", doc: { summary: "execute.queue messages that could not become jobs", query: { limit }, responses: { 200: ref("DeadLetterList") }, errors: [422] } },
  { mount: "/api", method: "POST", path: "dead-letters/:id/replay", action: "replayDeadLetter", access: "operator", doc: { summary: "Publish a dead letter's body to execute.queue again", responses: { 200: ref("DeadLetterAnswer") }, errors: [404, 409] } },
  { mount: "/api", method: "GET", path: "plugins", action: "plugins", access: "admin", doc: { summary: "Loaded plugins, task types (with their params schemas) and targets", responses: { 200: ref("Plugins") } } },
  { mount: "/api", method: "GET", path: "openapi.json", action: "openApi", access: "submitter", doc: { summary: "This document: the REST API, the worker callbacks and every loaded task type's params", responses: { 200: { type: "object", required: ["openapi", "paths"] } } } },
  { mount: "/api/worker", method: "POST", path: "started", action: "workerStarted", access: "worker", doc: "worker-contract" },
  { mount: "/api/worker", method: "POST", path: "heartbeat", action: "workerHeartbeat", access: "worker", doc: "worker-contract" },
  { mount: "/api/worker", method: "POST", path: "log", action: "workerLog", access: "worker", doc: "worker-contract" },
  { mount: "/api/worker", method: "POST", path: "result", action: "workerResult", access: "worker", doc: "worker-contract" },
  { mount: "/api/worker", method: "GET", path: "secrets", action: "workerSecrets", access: "worker", doc: "worker-contract" },
  { mount: "/", method: "GET", path: "health", action: "health", access: "public", doc: { summary: "Readiness: the store, the broker and this node's connections", responses: { 200: ref("Health"), 503: ref("Health") } } },
  { mount: "/", method: "GET", path: "metrics", action: "metrics", access: "operator", doc: { summary: "Prometheus metrics (a cluster's, summed over its nodes)", responses: { 200: { text: "text/plain" } } } },
];

/** moleculer-web aliases of a mount; a stream route's action gets the raw request and response (`$req`, `$res`). */
export function aliasesOf(mount: RouteSpec["mount"], service: string): Record<string, string | { action: string; passReqResToParams: true }> {
  return Object.fromEntries(
    ROUTES.filter((r) => r.mount === mount).map((r) => [`${r.method} ${r.path}`, r.streamToken ? { action: `${service}.${r.action}`, passReqResToParams: true as const } : `${service}.${r.action}`]),
  );
}

/** The route of a gateway action by its full name. */
export function routeOf(fullAction: string | undefined, service: string): RouteSpec | undefined {
  return ROUTES.find((r) => `${service}.${r.action}` === fullAction);
}

/** Access of a gateway action by its full name; unknown actions are admin-only (fail closed). */
export function accessOf(fullAction: string | undefined, service: string): Access {
  return routeOf(fullAction, service)?.access ?? "admin";
}

/** The URL path of a route, with each `:param` filled in. */
export function urlOf(route: RouteSpec, param = "x"): string {
  const base = route.mount === "/" ? "" : route.mount;
  return `${base}/${route.path.replace(/:[a-z]+/gi, param)}`;
}
