import fs from "node:fs";
import nodePath from "node:path";
import { workerOpenApiPaths } from "@blacktree/sdk/worker";
import { JOB_STATES } from "../jobs/states";
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS } from "../jobs/policy";
import { paramsToJsonSchema } from "../plugins/json-schema";
import type { PluginRegistry } from "../plugins/registry";
import { ref, ROUTES, type ResponseDoc, type RouteSpec, type Schema } from "./routes";

/**
 * The OpenAPI 3.1 document of a node, generated from the one route table (lib/gateway/routes.ts),
 * the worker contract of the SDK and the params schemas of the loaded task types: what
 * `GET /api/openapi.json` serves.
 */
export function openApiDocument(registry: PluginRegistry, opts: { version: string; serverUrl?: string | null; routes?: readonly RouteSpec[] }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const workerPaths = workerOpenApiPaths("/api/worker");
  for (const route of opts.routes ?? ROUTES) {
    const path = openApiPath(route);
    const method = route.method.toLowerCase();
    if (route.doc === "worker-contract") {
      const op = workerPaths[path]?.[method];
      if (!op) throw new Error(`the worker contract does not describe ${route.method} ${path}`);
      (paths[path] ??= {})[method] = op;
      continue;
    }
    if (!route.doc) continue; // the OpenAPI test refuses a route without one
    const { summary, query, body, responses, errors = [] } = route.doc;
    const parameters = [
      ...[...route.path.matchAll(/:([a-z]+)/gi)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } })),
      ...Object.entries(query ?? {}).map(([name, schema]) => ({ name, in: "query", required: false, schema })),
    ];
    const op: Record<string, unknown> = {
      operationId: route.action,
      summary,
      "x-access": route.access,
      security: route.access === "public" ? [] : [{ apiKey: [] }, { apiKeyHeader: [] }],
      ...(parameters.length ? { parameters } : {}),
      responses: {
        ...Object.fromEntries(Object.entries(responses).map(([status, doc]) => [status, responseOf(doc)])),
        ...Object.fromEntries(errorStatuses(route, errors).map((s) => [String(s), { $ref: `#/components/responses/E${s}` }])),
      },
    };
    if (body) op.requestBody = { required: body === "jobRequest", content: { "application/json": { schema: body === "jobRequest" ? ref("JobRequest") : body } } };
    (paths[path] ??= {})[method] = op;
  }
  return {
    openapi: "3.1.0",
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    info: {
      title: "Blacktree Orchestrator",
      version: opts.version,
      description: "Jobs over REST (API keys by role: submitter < operator < admin), worker callbacks (a per-attempt token), health and metrics. Every error is `{ error: { type, message, fields? } }`.",
    },
    ...(opts.serverUrl ? { servers: [{ url: opts.serverUrl }] } : {}),
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "An API key (BLACKTREE_API_KEYS) as `Authorization: Bearer <key>`" },
        apiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key" },
        workerToken: { type: "http", scheme: "bearer", description: "BLACKTREE_CALLBACK_TOKEN, scoped to one attempt" },
      },
      schemas: { ...COMPONENTS, ...jobRequestSchemas(registry) },
      responses: Object.fromEntries(Object.entries(ERROR_STATUSES).map(([s, description]) => [`E${s}`, { description, content: { "application/json": { schema: ref("Error") } } }])),
    },
  };
}

/** The orchestrator package's version, from its package.json (found upwards: the source and dist/ sit at different depths). */
export function orchestratorVersion(from = __dirname): string {
  for (let dir = from; ; dir = nodePath.dirname(dir)) {
    const file = nodePath.join(dir, "package.json");
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "blacktree-orchestrator" && pkg.version) return pkg.version;
    }
    if (nodePath.dirname(dir) === dir) return "0.0.0";
  }
}

/** `/api/jobs/:id` → `/api/jobs/{id}`. */
export function openApiPath(route: Pick<RouteSpec, "mount" | "path">): string {
  const base = route.mount === "/" ? "" : route.mount;
  return `${base}/${route.path.replace(/:([a-z]+)/gi, "{$1}")}`;
}

const ERROR_STATUSES: Record<number, string> = {
  400: "BAD_REQUEST: the body is not JSON",
  401: "UNAUTHORIZED: no valid API key",
  403: "FORBIDDEN: the key's role may not call this route",
  404: "Not found",
  409: "The job or dead letter is not in a state this allows (JOB_FINAL, JOB_KEY_CONFLICT, INVALID_TRANSITION, NOTHING_TO_REPLAY)",
  413: "PAYLOAD_TOO_LARGE: the body is over 256 kB",
  422: "VALIDATION_FAILED or UNKNOWN_TASK_TYPE: `fields` names each bad field",
  429: "RATE_LIMITED: retry after the Retry-After header",
  503: "A part the answer needs is unavailable (the store, a service, AMQP)",
};

function errorStatuses(route: RouteSpec, own: number[]): number[] {
  const out = new Set(own);
  if (route.access !== "public") out.add(401).add(429);
  if (route.access === "operator" || route.access === "admin") out.add(403);
  out.add(503);
  return [...out].sort();
}

function responseOf(doc: ResponseDoc): Record<string, unknown> {
  if ("text" in doc && typeof doc.text === "string") return { description: "Text", content: { [doc.text]: { schema: { type: "string" } } } };
  if ("eventStream" in doc) return { description: "A stream of server-sent events; each event's `data` is JSON of this schema", content: { "text/event-stream": { schema: { type: "string" }, "x-event-data": doc.eventStream } } };
  return { description: "OK", content: { "application/json": { schema: doc } } };
}

const isoTime = { type: "string", format: "date-time" };
const isoTimeOrNull = { type: ["string", "null"], format: "date-time" };
const nullableString = { type: ["string", "null"] };
const failureReason = { enum: ["LAUNCH_FAILED", "WORKER_LOST", "TIMED_OUT", "EXIT_NONZERO"] };

/** The envelope every job may carry besides its task type's params (lib/jobs/normalize.ts). */
const ENVELOPE: Record<string, Schema> = {
  jobId: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", description: "Idempotency key (same as idempotencyKey)" },
  idempotencyKey: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$" },
  priority: { type: "integer", minimum: -1000, maximum: 1000 },
  target: { type: "string", minLength: 1, maxLength: 63, description: "A launch target, where routing.allowJobTarget allows choosing" },
  timeouts: { type: "object", properties: Object.fromEntries(Object.keys(DEFAULT_TIMEOUTS).map((k) => [k, { type: "integer", minimum: 0, description: "ms; 0: none" }])), additionalProperties: false },
  retry: {
    type: "object",
    properties: {
      maxAttempts: { type: "integer", minimum: 1 },
      initialDelay: { type: "integer", minimum: 0 },
      backoffCoefficient: { type: "number", minimum: 1 },
      maxDelay: { type: "integer", minimum: 0 },
      jitter: { enum: ["full", "equal", "none"] },
      retryOn: { type: "array", items: failureReason },
    },
    propertyNames: { enum: Object.keys(DEFAULT_RETRY) },
  },
  createdAt: { type: "string", maxLength: 64, description: "ISO 8601 date-time; part of the job key of a job without one" },
};

/** One schema per loaded task type (its params beside the envelope), and their union `JobRequest`, told apart by `type`. */
function jobRequestSchemas(registry: PluginRegistry): Record<string, Schema> {
  const out: Record<string, Schema> = {};
  const names = [...registry.taskTypes.keys()];
  for (const [name, t] of registry.taskTypes) {
    const { properties, required } = paramsToJsonSchema({ deploymentId: { type: "string", optional: true, pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$" }, ...t.def.params });
    // `type` may be left out for `build`, the legacy backend's default.
    const typeRequired = name !== "build";
    out[`JobRequest_${name}`] = {
      type: "object",
      description: `A \`${name}\` job (plugin ${t.plugin}); fields no part of the job knows are refused.` + (t.def.secretFields?.length ? ` Secret fields (${t.def.secretFields.join(", ")}) are stored apart and never returned.` : ""),
      properties: { type: { const: name }, ...ENVELOPE, ...properties },
      required: [...(typeRequired ? ["type"] : []), ...required],
      additionalProperties: false,
    };
  }
  out.JobRequest = { oneOf: names.map((n) => ref(`JobRequest_${n}`)) };
  return out;
}

const errorSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["type", "message"],
      properties: {
        type: { type: "string" },
        message: { type: "string" },
        fields: { type: "array", items: { type: "object", required: ["field", "message"], properties: { field: { type: "string" }, message: { type: "string" } } } },
      },
    },
  },
};

const job = {
  type: "object",
  required: ["id", "type", "state", "deploymentId", "priority", "target", "params", "timeouts", "retry", "attempt", "source", "createdAt", "updatedAt", "result", "error", "version", "submittedBy"],
  properties: {
    id: { type: "string" },
    type: { type: "string" },
    state: ref("JobState"),
    deploymentId: nullableString,
    priority: { type: "integer" },
    target: nullableString,
    concurrencyKey: nullableString,
    params: { type: "object", description: "The validated params, without secrets" },
    timeouts: { type: "object", additionalProperties: { type: "integer" } },
    retry: { type: "object" },
    attempt: { type: "integer", minimum: 0 },
    source: { enum: ["rest", "amqp", "internal"] },
    parentId: nullableString,
    createdAt: isoTime,
    updatedAt: isoTime,
    runAfter: isoTimeOrNull,
    deadline: isoTimeOrNull,
    result: { type: ["object", "null"], description: "What the worker reported (a build's imageUrl); a failed job's is its last attempt's" },
    error: { anyOf: [{ type: "null" }, { type: "object", required: ["type", "message"], properties: { type: { type: "string" }, message: { type: "string" } } }] },
    version: { type: "integer" },
    submittedBy: nullableString,
    traceContext: { type: ["string", "null"], description: "W3C traceparent of the job's trace when the node exports traces" },
  },
};

const attempt = {
  type: "object",
  required: ["jobId", "attempt", "target", "key", "state", "launchedAt", "startedAt", "endedAt", "exitCode", "outcome", "result"],
  properties: {
    jobId: { type: "string" },
    attempt: { type: "integer", minimum: 1 },
    target: { type: "string" },
    key: { type: "string" },
    handle: { description: "The target's handle of the worker" },
    state: { enum: ["launching", "running", "stopping", "exited", "lost", "stopped"] },
    launchedAt: isoTime,
    startedAt: isoTimeOrNull,
    endedAt: isoTimeOrNull,
    heartbeatAt: isoTimeOrNull,
    exitCode: { type: ["integer", "null"] },
    outcome: { anyOf: [{ type: "null" }, failureReason, { enum: ["SUCCEEDED", "CANCELLED"] }] },
    reason: nullableString,
    result: { type: ["object", "null"] },
  },
};

const event = {
  type: "object",
  required: ["seq", "jobId", "kind", "from", "to", "attempt", "data", "at"],
  properties: {
    seq: { type: "integer" },
    jobId: { type: "string" },
    kind: { type: "string" },
    from: { anyOf: [{ type: "null" }, ref("JobState")] },
    to: { anyOf: [{ type: "null" }, ref("JobState")] },
    attempt: { type: ["integer", "null"] },
    data: { type: "object" },
    at: isoTime,
  },
};

const deadLetter = {
  type: "object",
  required: ["id", "source", "reason", "detail", "body", "properties", "receivedAt", "replayedAt", "replayCount"],
  properties: {
    id: { type: "string" },
    source: { type: "string" },
    reason: { type: "string" },
    detail: { type: "string" },
    body: { type: ["string", "null"], description: "As received, secrets redacted; null when it could not be kept" },
    properties: { type: "object" },
    receivedAt: isoTime,
    replayedAt: isoTimeOrNull,
    replayCount: { type: "integer" },
  },
};

const COMPONENTS: Record<string, Schema> = {
  Error: errorSchema,
  JobState: { enum: [...JOB_STATES] },
  Job: job,
  Attempt: attempt,
  Event: event,
  Submitted: { type: "object", required: ["job", "created"], properties: { job: ref("Job"), created: { type: "boolean" } } },
  JobAnswer: { type: "object", required: ["job"], properties: { job: ref("Job") } },
  JobPage: { type: "object", required: ["items", "nextCursor"], properties: { items: { type: "array", items: ref("Job") }, nextCursor: nullableString } },
  JobDetail: {
    type: "object",
    required: ["job", "attempts", "history"],
    properties: {
      job: ref("Job"),
      attempts: { type: "array", items: ref("Attempt") },
      history: { type: "array", items: ref("Event") },
      // A queued or retrying job: what holds it (docs/streams.md).
      waiting: {
        type: "object",
        required: ["reason"],
        properties: {
          reason: { type: "string", enum: ["limit", "backoff", "scheduled", "next"] },
          limit: { type: "object", properties: { scope: { type: "string", enum: ["global", "type", "target", "key"] }, name: { type: "string" }, max: { type: "integer" }, inUse: { type: "integer" } } },
          position: { type: "integer", minimum: 1 },
          until: { type: "string", format: "date-time" },
        },
      },
    },
  },
  JobLogs: {
    type: "object",
    required: ["jobId", "attempts"],
    properties: {
      jobId: { type: "string" },
      attempts: { type: "array", items: { type: "object", required: ["attempt", "target", "state", "lines"], properties: { attempt: { type: "integer" }, target: { type: "string" }, state: { type: "string" }, lines: { type: "array", items: { type: "string" } } } } },
    },
  },
  DeadLetter: deadLetter,
  DeadLetterList: { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("DeadLetter") } } },
  DeadLetterAnswer: { type: "object", required: ["deadLetter"], properties: { deadLetter: ref("DeadLetter") } },
  Plugins: {
    type: "object",
    required: ["plugins", "taskTypes", "targets"],
    properties: {
      plugins: { type: "array", items: { type: "object", required: ["name", "version", "apiVersion", "dependencies", "source"], properties: { name: { type: "string" }, version: nullableString, apiVersion: { type: "string" }, dependencies: { type: "object", additionalProperties: { type: "string" } }, source: { type: "string" } } } },
      taskTypes: { type: "array", items: { type: "object", required: ["name", "plugin", "params", "secretFields", "defaults"], properties: { name: { type: "string" }, plugin: { type: "string" }, params: { type: "object", description: "fastest-validator rules; patterns as strings" }, secretFields: { type: "array", items: { type: "string" } }, defaults: { type: "object" } } } },
      targets: { type: "array", items: { type: "object", required: ["name", "plugin"], properties: { name: { type: "string" }, plugin: { type: "string" }, configSchema: { type: "object" } } } },
    },
  },
  Health: {
    type: "object",
    required: ["status", "node", "checks"],
    properties: { status: { enum: ["ok", "unavailable"] }, node: { type: "string" }, checks: { type: "object", additionalProperties: { type: "object", required: ["ok"], properties: { ok: { type: "boolean" }, error: { type: "string" } } } } },
  },
};
