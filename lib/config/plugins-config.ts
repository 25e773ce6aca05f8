import fs from "node:fs";
import Validator from "fastest-validator";
import { blacktreeError, FieldError } from "../errors";
import type { Limits } from "../jobs/limits";
import type { RetryPolicy, Timeouts } from "../jobs/policy";
import { DEFAULT_ALLOWED_HOSTS } from "../plugins/repository-host";
import { interpolateEnv } from "./interpolate";
import { jsonErrorLocation, validationFields } from "./validation-fields";
import type { Mode } from "./env";

export interface PluginEntry {
  use: string;
  /** The config of the plugin's targets that `targets` leaves out (the only one, for most plugins). */
  config?: Record<string, unknown>;
  /** Each target's own config, by target name (for plugins with several targets). */
  targets?: Record<string, Record<string, unknown>>;
}

export interface Routing {
  default: string;
  byType: Record<string, string>;
  fallback: Record<string, string[]>;
  /** Whether a job may name its own target (among the loaded ones). */
  allowJobTarget: boolean;
}

/** Per task type overrides, and the ceilings a job's own options must stay under. */
export interface TaskTypeSettings {
  timeouts?: Partial<Timeouts>;
  maxTimeouts?: Partial<Timeouts>;
  retry?: Partial<RetryPolicy>;
  maxAttempts?: number;
  /** A newer queued job of the same deployment supersedes older queued ones. */
  coalesce?: boolean;
}

/** Security switches that differ between development and production. */
export interface Policy {
  allowLocalRepositories: boolean;
  allowTestCommands: boolean;
  /** Repository hosts: exact names, trusted as listed; "*" admits any other host that resolves only to public addresses. */
  allowedHosts: string[];
  /** How long the repository host's DNS check may take. */
  dnsTimeoutMs: number;
  [name: string]: unknown;
}

/** What a caller may ask of a job's envelope: REST callers by their key's role, `amqp` for execute.queue. */
export interface CallerPolicy {
  /** The highest `priority` a job may ask for (every caller may go down to -1000). */
  maxPriority: number;
  /** Whether a job may name its `target` (and only when `routing.allowJobTarget` allows it at all). */
  allowTarget: boolean;
}

export type CallerKind = "submitter" | "operator" | "admin" | "amqp";

export interface PluginsConfig {
  plugins: PluginEntry[];
  routing: Routing;
  limits: Limits;
  taskTypes: Record<string, TaskTypeSettings>;
  policy: Policy;
  /** Per-caller bounds of `priority` and `target` (defaults: a submitter may not raise its priority above 0 nor choose a target). */
  callers: Record<CallerKind, CallerPolicy>;
}

export const DEFAULT_CALLERS: Record<CallerKind, CallerPolicy> = {
  submitter: { maxPriority: 0, allowTarget: false },
  operator: { maxPriority: 1000, allowTarget: true },
  admin: { maxPriority: 1000, allowTarget: true },
  amqp: { maxPriority: 1000, allowTarget: true },
};

const timeoutsSchema = {
  type: "object",
  optional: true,
  strict: true,
  props: Object.fromEntries(
    ["queueTimeout", "startTimeout", "runTimeout", "heartbeatTimeout", "totalTimeout"].map((k) => [k, { type: "number", integer: true, min: 0, optional: true }]),
  ),
};
const countMap = { type: "record", optional: true, key: { type: "string" }, value: { type: "number", integer: true, min: 1 } };
const policySchema = {
  type: "object",
  optional: true,
  strict: true,
  props: {
    allowLocalRepositories: { type: "boolean", optional: true },
    allowTestCommands: { type: "boolean", optional: true },
    allowedHosts: { type: "array", optional: true, items: { type: "string", empty: false, max: 253, pattern: /^(\*|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)$/ } },
    dnsTimeoutMs: { type: "number", integer: true, min: 1, max: 30_000, optional: true },
  },
};

const callerSchema = {
  type: "object",
  optional: true,
  strict: true,
  props: { maxPriority: { type: "number", integer: true, min: -1000, max: 1000, optional: true }, allowTarget: { type: "boolean", optional: true } },
};

const schema = {
  $$strict: true,
  plugins: {
    type: "array",
    min: 1,
    items: {
      type: "object",
      strict: true,
      props: {
        use: { type: "string", empty: false },
        config: { type: "object", optional: true },
        targets: { type: "record", optional: true, key: { type: "string", empty: false }, value: { type: "object" } },
      },
    },
  },
  routing: {
    type: "object",
    strict: true,
    props: {
      default: { type: "string", empty: false },
      byType: { type: "record", optional: true, key: { type: "string" }, value: { type: "string", empty: false } },
      fallback: { type: "record", optional: true, key: { type: "string" }, value: { type: "array", items: "string" } },
      allowJobTarget: { type: "boolean", optional: true },
    },
  },
  limits: {
    type: "object",
    optional: true,
    strict: true,
    props: { global: { type: "number", integer: true, min: 1, optional: true }, byType: countMap, byTarget: countMap, perKey: { type: "number", integer: true, min: 1, optional: true } },
  },
  taskTypes: {
    type: "record",
    optional: true,
    key: { type: "string" },
    value: {
      type: "object",
      strict: true,
      props: {
        timeouts: timeoutsSchema,
        maxTimeouts: timeoutsSchema,
        retry: { type: "object", optional: true },
        maxAttempts: { type: "number", integer: true, min: 1, optional: true },
        coalesce: { type: "boolean", optional: true },
      },
    },
  },
  policies: {
    type: "object",
    optional: true,
    strict: true,
    props: { development: policySchema, production: policySchema },
  },
  callers: {
    type: "object",
    optional: true,
    strict: true,
    props: { submitter: callerSchema, operator: callerSchema, admin: callerSchema, amqp: callerSchema },
  },
};

const check = new Validator({ useNewCustomCheckerFunction: true }).compile(schema);

const DEFAULT_POLICY: Record<Mode, Policy> = {
  development: { allowLocalRepositories: true, allowTestCommands: true, allowedHosts: [...DEFAULT_ALLOWED_HOSTS, "*"], dnsTimeoutMs: 2000 },
  production: { allowLocalRepositories: false, allowTestCommands: false, allowedHosts: [...DEFAULT_ALLOWED_HOSTS], dnsTimeoutMs: 2000 },
};

/** Reads, interpolates and validates plugins.config.json; every error names the field. */
export function loadPluginsConfig(file: string, env: NodeJS.ProcessEnv, mode: Mode): PluginsConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw blacktreeError("CONFIG_INVALID", `Cannot read plugins config ${file}: ${(err as Error).message}`, { file });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    const where = jsonErrorLocation(text, err);
    throw blacktreeError("CONFIG_INVALID", `${file} is not valid JSON at ${where}: ${(err as Error).message}`, { file, fields: [{ field: "(file)", message: `is not valid JSON at ${where}` }] });
  }
  return parsePluginsConfig(raw, env, mode, file);
}

export function parsePluginsConfig(raw: unknown, env: NodeJS.ProcessEnv, mode: Mode, file = "plugins.config.json"): PluginsConfig {
  const value = interpolateEnv(raw, env) as Record<string, any>;
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw blacktreeError("CONFIG_INVALID", `${file}: must be a JSON object`, { file });
  }
  const result = check(value);
  if (result !== true) {
    const fields: FieldError[] = validationFields(result as any[]);
    throw blacktreeError("CONFIG_INVALID", `${file}: ${fields.map((f) => `${f.field} ${f.message}`).join("; ")}`, { file, fields });
  }
  checkFallbacks(value.routing?.fallback ?? {}, file);
  return {
    plugins: value.plugins,
    routing: { byType: {}, fallback: {}, allowJobTarget: true, ...value.routing },
    limits: value.limits ?? {},
    taskTypes: value.taskTypes ?? {},
    policy: { ...DEFAULT_POLICY[mode], ...(value.policies?.[mode] ?? {}) },
    callers: callersOf(value.callers),
  };
}

/** The configured caller bounds over the defaults, per kind of caller. */
export function callersOf(configured: Partial<Record<CallerKind, Partial<CallerPolicy>>> | undefined): Record<CallerKind, CallerPolicy> {
  const out = {} as Record<CallerKind, CallerPolicy>;
  for (const kind of Object.keys(DEFAULT_CALLERS) as CallerKind[]) out[kind] = { ...DEFAULT_CALLERS[kind], ...(configured?.[kind] ?? {}) };
  return out;
}

/** Each target at most once per chain: a list naming its own origin or one target twice would loop or retry a target in vain. */
function checkFallbacks(fallback: Record<string, string[]>, file: string): void {
  for (const [origin, list] of Object.entries(fallback)) {
    const seen = new Set([origin]);
    for (const target of list) {
      if (seen.has(target)) {
        const field = `routing.fallback.${origin}`;
        const message = target === origin ? `names '${origin}' itself: a fallback chain may not return to its origin` : `names '${target}' twice`;
        throw blacktreeError("CONFIG_INVALID", `${file}: ${field} ${message}`, { file, fields: [{ field, message }] });
      }
      seen.add(target);
    }
  }
}
