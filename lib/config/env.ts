import path from "node:path";
import { tracingConfigOf, type TracingConfig } from "../tracing";
import { blacktreeError } from "../errors";

export type Mode = "development" | "production";

/** Twelve-factor settings; defaults serve `npm start` on one machine. */
export interface EnvConfig {
  mode: Mode;
  port: number;
  host: string;
  dataDir: string;
  pluginsConfig: string;
  databaseUrl: string | null;
  /** Connections each node keeps to PostgreSQL. */
  databasePoolSize: number;
  transporter: string | null;
  services: string[] | null;
  amqpUrl: string | null;
  /** Unacked `execute.queue` messages in flight at once. */
  amqpPrefetch: number;
  /** Larger messages are dead-lettered unread. */
  amqpMaxMessageBytes: number;
  amqpHeartbeatSeconds: number;
  /** How long start-up waits for RabbitMQ before failing. */
  amqpConnectTimeoutMs: number;
  /** A message whose handling failed (not a validation failure) waits this long before it is retried. */
  amqpRequeueDelayMs: number;
  /** Failed handlings of one message (other than validation failures) before it is dead-lettered as HANDLING_FAILED. */
  amqpMaxRequeues: number;
  /** execute.queue messages with fields no part of the job knows: refused (a rejected job naming them) or dropped and logged. */
  amqpUnknownFields: "refuse" | "drop";

  redisUrl: string | null;
  logLevel: string;
  nodeId: string | null;
  /** Moleculer namespace: only nodes of one namespace see each other on a transporter. */
  namespace: string;
  /** Base URL workers use to call back; must be reachable from where workers run. */
  publicUrl: string;
  /** Signs worker callback tokens; generated per data dir when unset. */
  callbackSecret: string | null;
  reconcileIntervalMs: number;
  dispatchIntervalMs: number;
  /** How often the lifecycle looks for orphan workers on each target. */
  reapIntervalMs: number;
  /** An attempt still without a handle this long after its claim is launched again (same key). */
  relaunchAfterMs: number;
  /** `name:role:key,…`: gateway API keys (hashed as they are read). */
  apiKeys: string | null;
  /** Pepper of the API key hashes; generated per data dir when unset. */
  apiKeyPepper: string | null;
  /** AES-256-GCM key of secrets at rest (32 bytes, base64/hex); generated per data dir in development. */
  secretsKey: string | null;
  /** Former secrets keys, still used to decrypt during a rotation. */
  secretsKeyPrevious: string[];
  /** Exact browser origins allowed by CORS; none = no CORS headers at all. */
  corsOrigins: string[];
  /** Requests per API key (and per worker launch) per window on /api, /api/worker and /metrics. */
  rateLimit: number;
  rateLimitWindowMs: number;
  /** Failed authentications per client address per window, after which the address is refused until the window ends. */
  authFailureLimit: number;
  /** Stream routes (Server-Sent Events): heartbeat, per-connection buffer bound, the shared tail's safety poll, the operator stream's replay bound. */
  streamHeartbeatMs: number;
  streamBufferBytes: number;
  streamPollMs: number;
  streamReplayLimit: number;
  /** OpenTelemetry trace export (lib/tracing.ts): off unless an OTLP endpoint is set. */
  tracing: TracingConfig;
}

export const ENV_DOCS: Record<string, string> = {
  BLACKTREE_MODE: "development | production (default development)",
  PORT: "gateway port (default 3000)",
  HOST: "gateway bind address (default 0.0.0.0)",
  DATA_DIR: "SQLite database, logs, generated secrets (default ./data)",
  PLUGINS_CONFIG: "path of plugins.config.json (default ./plugins.config.json)",
  DATABASE_URL: "postgres://… to use PostgreSQL instead of SQLite",
  DATABASE_POOL_SIZE: "connections each node keeps to PostgreSQL (default 20)",
  TRANSPORTER: "Moleculer transporter, e.g. nats://127.0.0.1:4222 (default: in-process)",
  SERVICES: "comma-separated services this node runs (default: all)",
  AMQP_URL: "RabbitMQ URL; turns on AMQP intake and status publishing",
  AMQP_PREFETCH: "execute.queue messages handled at once (default 32)",
  AMQP_MAX_MESSAGE_BYTES: "larger job messages are dead-lettered (default 262144)",
  AMQP_HEARTBEAT_SECONDS: "AMQP heartbeat interval (default 10)",
  AMQP_CONNECT_TIMEOUT_MS: "how long start-up waits for RabbitMQ (default 30000)",
  AMQP_REQUEUE_DELAY_MS: "delay before a message whose handling failed (store, broker, a plugin error, DNS down) is retried (default 2000)",
  AMQP_MAX_REQUEUES: "failed handlings of one execute.queue message (other than validation failures) before it is dead-lettered as HANDLING_FAILED (default 5)",
  AMQP_UNKNOWN_FIELDS: "refuse | drop: execute.queue messages with unknown fields become rejected jobs naming them, or have them dropped and logged (default refuse)",
  REDIS_URL: "Redis URL; turns on the Redis pub/sub status sink",
  LOG_LEVEL: "fatal | error | warn | info | debug | trace (default info)",
  NODE_ID: "Moleculer node id (default: host name + pid)",
  NAMESPACE: "Moleculer namespace; orchestrator and worker nodes must share it (default blacktree)",
  BLACKTREE_PUBLIC_URL: "URL workers call back to (default http://127.0.0.1:$PORT)",
  BLACKTREE_CALLBACK_SECRET: "key that signs worker callback tokens (default: generated into DATA_DIR)",
  RECONCILE_INTERVAL_MS: "how often the lifecycle inspects running attempts (default 1000)",
  DISPATCH_INTERVAL_MS: "how often the dispatcher looks for runnable jobs besides event wake-ups (default 1000)",
  REAP_INTERVAL_MS: "how often the lifecycle stops orphan workers that no live attempt owns (default 30000)",
  RELAUNCH_AFTER_MS: "an attempt still without a handle this long after its claim (e.g. the node died mid-launch) is launched again with the same key (default 30000)",
  BLACKTREE_API_KEYS: "gateway API keys, name:role:key,… (roles submitter, operator, admin); required in production",
  BLACKTREE_API_KEY_PEPPER: "pepper of the API key hashes (default: generated into DATA_DIR)",
  BLACKTREE_SECRETS_KEY: "AES-256-GCM key for secrets at rest, 32 bytes base64 or hex; required in production",
  BLACKTREE_SECRETS_KEY_PREVIOUS: "comma-separated former secrets keys, decrypt only (rotation)",
  BLACKTREE_CORS_ORIGINS: "comma-separated exact browser origins allowed by CORS (default: none)",
  BLACKTREE_RATE_LIMIT: "requests per API key per window (default 600)",
  BLACKTREE_RATE_LIMIT_WINDOW_MS: "rate limit window (default 60000)",
  BLACKTREE_AUTH_FAILURE_LIMIT: "failed authentications per client address per window before the address is refused until the window ends (default 20)",
  BLACKTREE_STREAM_HEARTBEAT_MS: "a `: heartbeat` comment on every event/log stream this often (default 15000)",
  BLACKTREE_STREAM_BUFFER_BYTES: "bytes a stream connection may have unsent before the server cuts it (default 1048576)",
  BLACKTREE_STREAM_POLL_MS: "safety poll of the gateway's shared event tail; change notices wake it sooner (default 1000)",
  BLACKTREE_STREAM_REPLAY_LIMIT: "most events GET /api/events replays after a Last-Event-ID (default 10000)",
  OTEL_EXPORTER_OTLP_ENDPOINT: "OTLP/HTTP base URL (e.g. http://collector:4318): turns on job traces, exported as JSON to <url>/v1/traces (default: off)",
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "OTLP/HTTP traces URL, used as is (wins over OTEL_EXPORTER_OTLP_ENDPOINT)",
  OTEL_EXPORTER_OTLP_HEADERS: "extra headers of the export requests, k=v,k2=v2 (e.g. a collector's auth token)",
  OTEL_SERVICE_NAME: "service.name of the exported spans (default blacktree-orchestrator)",
  OTEL_BSP_SCHEDULE_DELAY: "longest a finished span waits before its batch is exported, ms (default 2000)",
  // Read by the deploy/stop task types and handed to their worker as they are (plugins/workers/deploy/settings.ts checks them).
  BLACKTREE_DEPLOYER: "docker | ecs: where deploy jobs run the image (default docker)",
  BLACKTREE_DEPLOY_TIMEOUT_MS: "how long a deploy waits for the new version to answer (docker, default 60000) or be steady (ecs, default 300000)",
  BLACKTREE_DEPLOY_POLL_MS: "how often a deploy checks while it waits (docker 250, ecs 5000)",
  BLACKTREE_DEPLOY_DOCKER_SOCKET: "the Docker engine socket the deploy worker uses (default /var/run/docker.sock)",
  BLACKTREE_DEPLOY_DOCKER_NETWORK: "network mode of application containers: bridge, host or a network's name (default bridge)",
  BLACKTREE_DEPLOY_DOCKER_PUBLISH: "1: also bind the port on the host (-p port:port); 0: reached at the container's address only (default 1)",
  BLACKTREE_DEPLOY_ECS_CLUSTER: "the ECS cluster of the deployments' services (required with BLACKTREE_DEPLOYER=ecs)",
  BLACKTREE_DEPLOY_ECS_REGION: "AWS region of that cluster (default: the worker's AWS configuration)",
  BLACKTREE_DEPLOY_ECS_ENDPOINT: "another ECS endpoint (a VPC endpoint, the test emulator)",
  BLACKTREE_DEPLOY_ECS_SERVICE_PREFIX: "a deployment's service is <prefix><deploymentId> (default blacktree-)",
  BLACKTREE_DEPLOY_ECS_CONTAINER: "the container of the service's task definition that runs the image (default: its only one)",
};

export function loadEnvConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): EnvConfig {
  const mode = (env.BLACKTREE_MODE ?? "development") as Mode;
  if (mode !== "development" && mode !== "production") invalidEnv("BLACKTREE_MODE", "must be development or production");
  const port = envInt(env, "PORT", 3000, 0, 65535);
  const list = (v?: string) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : null);
  return {
    mode,
    port,
    host: env.HOST || "0.0.0.0",
    dataDir: path.resolve(cwd, env.DATA_DIR || "./data"),
    pluginsConfig: path.resolve(cwd, env.PLUGINS_CONFIG || "./plugins.config.json"),
    databaseUrl: env.DATABASE_URL || null,
    databasePoolSize: envInt(env, "DATABASE_POOL_SIZE", 20, 1, 1000),
    transporter: env.TRANSPORTER || null,
    services: checkServices(list(env.SERVICES)),
    amqpUrl: env.AMQP_URL || null,
    amqpPrefetch: envInt(env, "AMQP_PREFETCH", 32, 1, 10_000),
    amqpMaxMessageBytes: envInt(env, "AMQP_MAX_MESSAGE_BYTES", 256 * 1024, 1024, 64 * 1024 * 1024),
    amqpHeartbeatSeconds: envInt(env, "AMQP_HEARTBEAT_SECONDS", 10, 1, 600),
    amqpConnectTimeoutMs: envInt(env, "AMQP_CONNECT_TIMEOUT_MS", 30_000, 100, 600_000),
    amqpRequeueDelayMs: envInt(env, "AMQP_REQUEUE_DELAY_MS", 2000, 0, 600_000),
    amqpMaxRequeues: envInt(env, "AMQP_MAX_REQUEUES", 5, 1, 1000),
    amqpUnknownFields: envChoice(env, "AMQP_UNKNOWN_FIELDS", ["refuse", "drop"] as const, "refuse"),
    redisUrl: env.REDIS_URL || null,
    logLevel: env.LOG_LEVEL || "info",
    nodeId: env.NODE_ID || null,
    namespace: env.NAMESPACE || "blacktree",
    publicUrl: (env.BLACKTREE_PUBLIC_URL || `http://127.0.0.1:${port}`).replace(/\/+$/, ""),
    callbackSecret: env.BLACKTREE_CALLBACK_SECRET || null,
    reconcileIntervalMs: envInt(env, "RECONCILE_INTERVAL_MS", 1000, 10, 600_000),
    dispatchIntervalMs: envInt(env, "DISPATCH_INTERVAL_MS", 1000, 10, 600_000),
    reapIntervalMs: envInt(env, "REAP_INTERVAL_MS", 30_000, 100, 3_600_000),
    relaunchAfterMs: envInt(env, "RELAUNCH_AFTER_MS", 30_000, 100, 3_600_000),
    apiKeys: env.BLACKTREE_API_KEYS || null,
    apiKeyPepper: env.BLACKTREE_API_KEY_PEPPER || null,
    secretsKey: env.BLACKTREE_SECRETS_KEY || null,
    secretsKeyPrevious: list(env.BLACKTREE_SECRETS_KEY_PREVIOUS) ?? [],
    corsOrigins: (list(env.BLACKTREE_CORS_ORIGINS) ?? []).map((o) => checkOrigin(o)),
    rateLimit: envInt(env, "BLACKTREE_RATE_LIMIT", 600, 1, 100_000_000),
    rateLimitWindowMs: envInt(env, "BLACKTREE_RATE_LIMIT_WINDOW_MS", 60_000, 100, 3_600_000),
    authFailureLimit: envInt(env, "BLACKTREE_AUTH_FAILURE_LIMIT", 20, 1, 100_000_000),
    streamHeartbeatMs: envInt(env, "BLACKTREE_STREAM_HEARTBEAT_MS", 15_000, 50, 3_600_000),
    streamBufferBytes: envInt(env, "BLACKTREE_STREAM_BUFFER_BYTES", 1 << 20, 1024, 1 << 30),
    streamPollMs: envInt(env, "BLACKTREE_STREAM_POLL_MS", 1000, 10, 600_000),
    streamReplayLimit: envInt(env, "BLACKTREE_STREAM_REPLAY_LIMIT", 10_000, 0, 1_000_000),
    tracing: tracingConfigOf(env),
  };
}

/** The services a node may run (`targets.<name>` hosts one launch target). */
export const SERVICE_NAMES = ["validator", "intake", "dispatcher", "lifecycle", "status", "gateway", "targets"] as const;

/** A typo in SERVICES would leave a node quietly without a service: refuse it, naming it. */
function checkServices(names: string[] | null): string[] | null {
  if (!names) return null;
  for (const name of names) {
    if ((SERVICE_NAMES as readonly string[]).includes(name) || /^targets\.[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) continue;
    invalidEnv("SERVICES", `names '${name}', which is not a service: use ${SERVICE_NAMES.join(", ")} or targets.<name>`);
  }
  return names;
}

/** An origin is scheme://host[:port], nothing more: compared exactly, never as a substring or pattern. */
function checkOrigin(origin: string): string {
  let url: URL | null = null;
  try {
    url = new URL(origin);
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || url.origin !== origin) invalidEnv("BLACKTREE_CORS_ORIGINS", `has '${origin}': each origin must be exactly scheme://host[:port]`);
  return origin;
}

/** One of the allowed words, or the default when unset. */
export function envChoice<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], def: T): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  if (!(allowed as readonly string[]).includes(raw)) invalidEnv(name, `must be one of ${allowed.join(", ")}`);
  return raw as T;
}

/** A whole number from the environment within [min, max], or the default when unset. */
export function envInt(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) invalidEnv(name, `must be a whole number from ${min} to ${max}`);
  return n;
}

export function invalidEnv(name: string, message: string): never {
  throw blacktreeError("CONFIG_INVALID", `${name} ${message}`, { fields: [{ field: name, message }] });
}
