/**
 * The worker contract, machine-readable: what a worker receives and how it reports, in
 * any language and any container. docs/plugins.md explains it; the gateway's OpenAPI
 * document can embed `workerOpenApiPaths()` (JSON Schema 2020-12, as OpenAPI 3.1 takes it).
 * Tests hold it to the gateway's route table and to the env the orchestrator really sets.
 */

export interface WorkerEnvVar {
  description: string;
  /** Set for every attempt (false: only when there is something to say). */
  always: boolean;
}

/** The environment of every worker, on every target, besides the workload's own `env`. */
export const WORKER_ENV_VARS = {
  BLACKTREE_JOB_ID: { description: "The job's id.", always: true },
  BLACKTREE_ATTEMPT: { description: "The attempt number, from 1; a retry is a new attempt with a new token.", always: true },
  BLACKTREE_JOB_TYPE: { description: "The job's task type.", always: true },
  BLACKTREE_DEPLOYMENT_ID: { description: "The job's deploymentId, or empty.", always: true },
  BLACKTREE_CALLBACK_URL: {
    description: "Base URL of the worker routes (`<BLACKTREE_PUBLIC_URL>/api/worker`); the routes below are relative to it. The worker must be able to reach it (a container needs a network that does).",
    always: true,
  },
  BLACKTREE_CALLBACK_TOKEN: {
    description: "Bearer token for the routes, scoped to this job and attempt and expiring with it (start + run timeouts + 5 min). Treat it as a secret.",
    always: true,
  },
  BLACKTREE_SECRETS: { description: "Comma-separated names of the secrets this attempt may fetch once from GET /secrets (empty: none).", always: true },
  TRACEPARENT: {
    description: "W3C Trace Context of the launch, when the orchestrator exports traces: send it as the `traceparent` header of every callback (the worker client does) so they join the job's trace; a worker may also parent its own spans on it.",
    always: false,
  },
} as const satisfies Record<string, WorkerEnvVar>;

export type WorkerEnvName = keyof typeof WORKER_ENV_VARS;

/** Bounds the gateway enforces on what a worker sends. */
export const WORKER_LIMITS = {
  /** Lines per POST /log request (more are dropped). */
  logLinesPerRequest: 1000,
  /** Characters per log line (longer lines are cut). */
  logLineChars: 4096,
  /** Fields of a result (more are dropped). */
  resultFields: 50,
  /** Characters of a string field of a result (longer ones are cut). */
  resultStringChars: 4096,
  /** Request body bytes. */
  bodyBytes: 256 * 1024,
} as const;

const errorBody = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["type", "message"],
      properties: { type: { type: "string" }, message: { type: "string" } },
    },
  },
} as const;

const resultBody = {
  type: "object",
  description:
    "Flat: only string (cut at 4096 characters), number, boolean and null fields are kept, at most 50. " +
    "`success: false` fails the attempt even when the worker exits 0; `retryable: false` keeps a failed attempt from being retried; " +
    "`error` becomes the job's error message; the whole object becomes the job's `result` when it succeeds (and feeds the task type's followUps).",
  properties: {
    success: { type: "boolean" },
    imageUrl: { type: ["string", "null"] },
    error: { type: ["string", "null"] },
    message: { type: "string" },
    retryable: { type: "boolean" },
  },
  required: ["success"],
  additionalProperties: { type: ["string", "number", "boolean", "null"] },
} as const;

export interface WorkerRoute {
  method: "GET" | "POST";
  /** Relative to BLACKTREE_CALLBACK_URL. */
  path: string;
  summary: string;
  requestBody?: object;
  response: object;
}

export const WORKER_ROUTES: readonly WorkerRoute[] = [
  {
    method: "POST",
    path: "/started",
    summary: "The worker runs: the attempt becomes `running` now instead of at the target's next inspection. Send it first; repeating it is harmless.",
    requestBody: { type: "object" },
    response: { type: "object" },
  },
  {
    method: "POST",
    path: "/heartbeat",
    summary: "The worker is alive. Needed when the job has a heartbeatTimeout: a silent attempt then ends as WORKER_LOST. Every other report counts as a heartbeat too.",
    requestBody: { type: "object" },
    response: { type: "object" },
  },
  {
    method: "POST",
    path: "/log",
    summary:
      "Log lines, appended to the attempt's log (a bounded tail): what the job's logs show while it runs. When the attempt ends, the target's own log of the worker's stdout and stderr (process, docker, pool) replaces them unless it is empty; on targets that keep none (fargate, ec2) the pushed lines stay.",
    requestBody: { type: "object", required: ["lines"], properties: { lines: { type: "array", maxItems: WORKER_LIMITS.logLinesPerRequest, items: { type: "string", maxLength: WORKER_LIMITS.logLineChars } } } },
    response: { type: "object" },
  },
  {
    method: "POST",
    path: "/result",
    summary: "The worker's outcome, sent once before it exits (sending it again replaces it). The exit code still ends the attempt: 0 and a result without `success: false` succeed.",
    requestBody: resultBody,
    response: { type: "object" },
  },
  {
    method: "GET",
    path: "/secrets",
    summary: "The values of the secrets named in BLACKTREE_SECRETS, once per attempt: a second fetch is refused (403). Never log them.",
    response: { type: "object", required: ["secrets"], properties: { secrets: { type: "object", additionalProperties: { type: "string" } } } },
  },
];

/** What each answer means and what a worker does about it. */
export const WORKER_RESPONSES = {
  "2xx": "Recorded.",
  "401": "UNAUTHORIZED: the token is missing, wrong or expired. Do not retry; the attempt is over for the orchestrator.",
  "403":
    "FORBIDDEN: the attempt is no longer live — the job was cancelled, timed out, or moved on to another attempt — and the report changed nothing (on GET /secrets it can also mean the secrets were already fetched). Do not retry; stop working: the target stops the worker soon anyway.",
  "413": "PAYLOAD_TOO_LARGE: the body is over 256 kB. Send less (log lines in several requests).",
  "429": "RATE_LIMITED: retry after the Retry-After header.",
  "5xx": "The orchestrator (or its store) is unavailable: retry with backoff; a result is worth several tries.",
  network: "Connection refused, reset or timed out: retry with backoff, like a 5xx.",
} as const;

export const WORKER_CONTRACT = {
  /** 1.1: TRACEPARENT and the `traceparent` header (optional: a 1.0 worker still works). */
  version: "1.1.0",
  env: WORKER_ENV_VARS,
  authorization: "Authorization: Bearer <BLACKTREE_CALLBACK_TOKEN> on every route",
  tracing: "With TRACEPARENT set, send it as the `traceparent` header on every route: the callbacks become spans of the job's trace.",
  routes: WORKER_ROUTES,
  responses: WORKER_RESPONSES,
  limits: WORKER_LIMITS,
  exitCode: "The target reports the worker's exit code: 0 succeeds unless the result said `success: false`; anything else fails the attempt (EXIT_NONZERO), retried per the job's retry policy unless the result said `retryable: false`.",
  signals: "Stopping (a cancel, a timeout, orphan reaping) sends SIGTERM, then a kill after the target's grace. Clean up and exit on SIGTERM; no result is expected.",
} as const;

/**
 * The worker routes as OpenAPI 3.1 path items under `prefix` (the gateway mounts them at
 * `/api/worker`), each with bearer security named `workerToken`.
 */
export function workerOpenApiPaths(prefix = "/api/worker"): Record<string, Record<string, unknown>> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of WORKER_ROUTES) {
    const op: Record<string, unknown> = {
      summary: route.summary,
      security: [{ workerToken: [] }],
      responses: {
        "200": { description: "Recorded", content: { "application/json": { schema: route.response } } },
        ...Object.fromEntries(["401", "403", "413", "429"].map((s) => [s, { description: WORKER_RESPONSES[s as keyof typeof WORKER_RESPONSES], content: { "application/json": { schema: errorBody } } }])),
      },
    };
    if (route.requestBody) op.requestBody = { required: true, content: { "application/json": { schema: route.requestBody } } };
    (paths[prefix + route.path] ??= {})[route.method.toLowerCase()] = op;
  }
  return paths;
}
