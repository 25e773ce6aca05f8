import { randomUUID } from "node:crypto";
import Validator from "fastest-validator";
import { blacktreeError, BlacktreeError, FieldError } from "../errors";
import type { Role } from "../auth/roles";
import { callersOf, CallerKind, PluginsConfig } from "../config/plugins-config";
import type { PluginRegistry } from "../plugins/registry";
import type { PluginContext, TaskJob } from "../plugins/sdk";
import { forbiddenKeyPath, MAX_JSON_DEPTH, tooDeepPath } from "./json-shape";
import { deriveJobId, JobSource, NewJob, restJobId } from "./model";
import { compileRetryPolicy, compileTimeouts, DEFAULT_RETRY, DEFAULT_TIMEOUTS } from "./policy";
import { unknownFields } from "./unknown-fields";

/** Fields every job may carry besides its task type's own. */
const ENVELOPE_FIELDS = ["type", "jobId", "idempotencyKey", "priority", "target", "timeouts", "retry", "createdAt"] as const;
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** ISO 8601 date-time (it is part of the job key): date, `T`, time to the minute or finer, and a zone. */
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

const checkEnvelope = new Validator({ useNewCustomCheckerFunction: true }).compile({
  type: { type: "string", optional: true, empty: false, max: 63 },
  jobId: { type: "string", optional: true, pattern: ID_PATTERN },
  idempotencyKey: { type: "string", optional: true, pattern: ID_PATTERN },
  priority: { type: "number", optional: true, integer: true, min: -1000, max: 1000 },
  target: { type: "string", optional: true, empty: false, max: 63 },
  timeouts: { type: "object", optional: true },
  retry: { type: "object", optional: true },
  createdAt: { type: "string", optional: true, max: 64 },
});

function isIsoDateTime(value: string): boolean {
  const m = ISO_DATE_TIME.exec(value);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number);
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && h < 24 && mi < 60 && s < 60 && !Number.isNaN(Date.parse(value));
}

/** What `retry` and `timeouts` may hold. */
const NESTED_ENVELOPE: Record<string, readonly string[]> = { retry: Object.keys(DEFAULT_RETRY), timeouts: Object.keys(DEFAULT_TIMEOUTS) };

export interface NormalizeInput {
  body: unknown;
  source: JobSource;
  /** From the transport: AMQP messageId or the REST Idempotency-Key header. */
  idempotencyKey?: string | null;
  parentId?: string | null;
  /** The REST caller (its key's name and role): REST job keys live in the caller's namespace, and `callers.<role>` bounds its envelope. */
  caller?: { name: string; role: Role } | null;
  /**
   * Fields no part of the job knows are refused (default). `drop` removes them instead and
   * logs their names: only for execute.queue, where `AMQP_UNKNOWN_FIELDS=drop` lets a
   * backend's extra fields through.
   */
  unknownFields?: "refuse" | "drop";
}

export interface NormalizeDeps {
  registry: PluginRegistry;
  config: PluginsConfig;
  ctx: PluginContext;
  now?: number;
}

/**
 * Envelope + the task type's schema + its semantic checks → a job ready to store, or a
 * VALIDATION_FAILED / UNKNOWN_TASK_TYPE error listing every bad field.
 */
export async function normalizeJob(input: NormalizeInput, deps: NormalizeDeps): Promise<NewJob> {
  const now = deps.now ?? Date.now();
  const body = input.body;
  if (!body || typeof body !== "object" || Array.isArray(body)) throw invalid([{ field: "", message: "the job must be a JSON object" }]);
  const deep = tooDeepPath(body);
  if (deep !== null) throw invalid([{ field: deep, message: `is nested deeper than ${MAX_JSON_DEPTH} levels` }]);
  const polluted = forbiddenKeyPath(body);
  if (polluted) throw invalid([{ field: polluted, message: "is a forbidden key" }]);

  let raw = body as Record<string, unknown>;
  const envelope = checkEnvelope(raw);
  const envelopeErrors = envelope === true ? [] : toFields(envelope as any[]);
  if (typeof raw.createdAt === "string" && !envelopeErrors.some((f) => f.field === "createdAt") && !isIsoDateTime(raw.createdAt)) {
    envelopeErrors.push({ field: "createdAt", message: "must be an ISO 8601 date-time, e.g. 2025-07-09T12:00:00Z (it is part of the job key)" });
  }

  const type = typeof raw.type === "string" ? raw.type : "build"; // the legacy backend omits `type`
  const taskType = deps.registry.taskType(type);
  // Fields nothing knows are named, never dropped silently (with the type's own fields known, so after the type).
  // Every job keeps `deploymentId`, declared by its type or not (the SDK's compileParams).
  let unknown = taskType ? unknownFields(raw, { top: [...ENVELOPE_FIELDS, "deploymentId", ...Object.keys(taskType.def.params).filter((k) => !k.startsWith("$$"))], nested: NESTED_ENVELOPE }) : [];
  if (unknown.length && input.unknownFields === "drop") {
    raw = withoutFields(raw, unknown.map((f) => f.field));
    deps.ctx.logger.warn(`⚠️ ${input.source} job of type ${type}: unknown fields dropped (AMQP_UNKNOWN_FIELDS=drop): ${unknown.map((f) => f.field).join(", ")}`);
    unknown = [];
  }
  if (envelopeErrors.length || unknown.length) throw invalid([...envelopeErrors, ...unknown]);
  if (!taskType) {
    throw blacktreeError("UNKNOWN_TASK_TYPE", `Unknown task type '${type}'`, {
      fields: [{ field: "type", message: `must be one of ${[...deps.registry.taskTypes.keys()].join(", ")}`, actual: type }],
    });
  }

  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (!(ENVELOPE_FIELDS as readonly string[]).includes(k)) params[k] = v;
  const checked = await taskType.checkParams(params);
  if (checked !== true) throw invalid(toFields(checked as any[]));

  const secrets: Record<string, string> = {};
  for (const name of taskType.def.secretFields ?? []) {
    if (typeof params[name] === "string" && params[name] !== "") secrets[name] = params[name] as string;
    delete params[name];
  }

  const deploymentId = typeof params.deploymentId === "string" ? params.deploymentId : null;
  const explicitKey = (raw.jobId as string | undefined) ?? (raw.idempotencyKey as string | undefined) ?? input.idempotencyKey ?? null;
  if (explicitKey !== null && !ID_PATTERN.test(explicitKey)) throw invalid([{ field: "idempotencyKey", message: "must be 1-128 letters, digits or . _ : -" }]);
  const id = jobIdOf(input, { explicitKey, type, deploymentId, createdAt: raw.createdAt as string | undefined });
  const bounds = callerBounds(input, deps.config);
  if (bounds && typeof raw.priority === "number" && raw.priority > bounds.policy.maxPriority) {
    throw invalid([{ field: "priority", message: `may be at most ${bounds.policy.maxPriority} for the ${bounds.kind} role`, expected: bounds.policy.maxPriority, actual: raw.priority }]);
  }
  if (bounds && raw.target !== undefined && !bounds.policy.allowTarget) {
    throw invalid([{ field: "target", message: `may not be chosen by the ${bounds.kind} role (callers.${bounds.kind}.allowTarget)` }]);
  }

  const taskJob: TaskJob = { id, type, deploymentId, attempt: 0, params };
  await taskType.def.check?.(taskJob, deps.ctx);

  const settings = deps.config.taskTypes[type] ?? {};
  const timeouts = compileTimeouts([taskType.def.defaults?.timeouts, settings.timeouts], raw.timeouts as object | undefined, settings.maxTimeouts);
  const retry = compileRetryPolicy([taskType.def.defaults?.retry, settings.retry], raw.retry as object | undefined, settings.maxAttempts ?? 10);

  return {
    id,
    type,
    state: "queued",
    deploymentId,
    priority: (raw.priority as number | undefined) ?? taskType.def.defaults?.priority ?? 0,
    target: chooseTarget(type, raw.target as string | undefined, deps),
    concurrencyKey: taskType.def.concurrencyKey?.(taskJob) ?? null,
    params,
    secrets,
    timeouts,
    retry,
    source: input.source,
    parentId: input.parentId ?? null,
    error: null,
    deadline: timeouts.totalTimeout ? now + timeouts.totalTimeout : null,
    runAfter: null,
  };
}

/**
 * Job ids by source, in namespaces that never meet. AMQP (and internal) jobs keep the
 * backend's keys exactly: jobId/idempotencyKey, else the messageId, else a hash of (type,
 * deploymentId, createdAt), so a redelivery maps to its job. A REST caller's key, and its
 * createdAt hash, are taken in that caller's own namespace (`rest:<key name>:…`, hashed), so
 * no REST caller can take an id a backend message (or another caller) will need. Without a
 * key or a createdAt there is nothing stable to hash: the job gets a fresh id.
 */
function jobIdOf(input: NormalizeInput, k: { explicitKey: string | null; type: string; deploymentId: string | null; createdAt?: string }): string {
  if (input.source === "rest") {
    const caller = input.caller?.name ?? "";
    if (k.explicitKey) return restJobId(caller, k.explicitKey);
    if (k.createdAt) return restJobId(caller, deriveJobId({ type: k.type, deploymentId: k.deploymentId, createdAt: k.createdAt }));
  } else if (k.explicitKey || k.createdAt) {
    return deriveJobId({ idempotencyKey: k.explicitKey, type: k.type, deploymentId: k.deploymentId, createdAt: k.createdAt });
  }
  return `job_${randomUUID().replace(/-/g, "").slice(0, 24)}`;
}

/** The envelope bounds of this caller: its key's role over REST, `amqp` for execute.queue; none for internal jobs (follow-ups). */
function callerBounds(input: NormalizeInput, config: PluginsConfig) {
  const kind: CallerKind | null = input.source === "rest" ? (input.caller?.role ?? "submitter") : input.source === "amqp" ? "amqp" : null;
  return kind ? { kind, policy: (config.callers ?? callersOf(undefined))[kind] } : null;
}

/** The job's own choice (when policy allows) > routing.byType > the type's default > routing.default. */
function chooseTarget(type: string, requested: string | undefined, deps: NormalizeDeps): string {
  const { routing } = deps.config;
  if (requested !== undefined) {
    if (!routing.allowJobTarget) throw invalid([{ field: "target", message: "jobs may not choose their target here" }]);
    if (!deps.registry.target(requested)) throw invalid([{ field: "target", message: `must be one of ${[...deps.registry.targets.keys()].join(", ")}`, actual: requested } as FieldError]);
    return requested;
  }
  const preferred = routing.byType[type] ?? deps.registry.taskType(type)?.def.defaults?.target;
  return preferred && deps.registry.target(preferred) ? preferred : routing.default;
}

/** A copy without the given fields (`a` or `a.b`, one level deep). */
function withoutFields(raw: Record<string, unknown>, fields: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  for (const field of fields) {
    const [top, inner] = field.split(".", 2);
    if (inner === undefined) delete out[top];
    else if (out[top] && typeof out[top] === "object") {
      const copy = { ...(out[top] as Record<string, unknown>) };
      delete copy[inner];
      out[top] = copy;
    }
  }
  return out;
}

function toFields(errors: any[]): FieldError[] {
  return errors.map((e) => ({ field: e.field ?? "", message: e.message, type: e.type, ...(e.expected !== undefined ? { expected: e.expected } : {}) }));
}

export function invalid(fields: FieldError[]): BlacktreeError {
  return blacktreeError("VALIDATION_FAILED", `Invalid job: ${fields.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message)).join("; ")}`, { fields });
}
