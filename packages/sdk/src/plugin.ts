/**
 * The public plugin API: the types a task type or a launch target is written against,
 * and `define*` helpers that only give them types. The orchestrator's built-ins use
 * exactly this, from this package.
 */
import type { ValidationSchema } from "fastest-validator";

/** A fastest-validator schema (https://github.com/icebob/fastest-validator): a task type's params, a target's config. */
export type { ValidationSchema };

export interface PluginLogger {
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  debug(...args: unknown[]): void;
}

/**
 * The orchestrator's cluster, as far as a plugin may use it: call another node's service
 * and see who is connected (how the `pool` target reaches its worker nodes).
 */
export interface PluginCluster {
  /** Calls an action, on one node when `nodeID` is given; never retried by the broker. */
  call<T = unknown>(action: string, params: Record<string, unknown>, opts?: { nodeID?: string; timeoutMs?: number }): Promise<T>;
  /** IDs of the connected nodes that run a service of this name (this node included). */
  nodesWithService(service: string): string[];
  /** Whether a node is connected now (false for nodes that left or were never seen). */
  isNodeAvailable(nodeID: string): boolean;
}

/** What the host hands a task type or target. */
export interface PluginContext {
  logger: PluginLogger;
  /** Directory for the plugin's own files (logs, state). */
  dataDir: string;
  /** Orchestrator mode: policies are stricter in production. */
  mode: "development" | "production";
  /** Policy switches from config that task types honour (e.g. local repositories). */
  policy: Record<string, unknown>;
  /** Resolves a host name to its addresses for the repository host check (injectable for tests). */
  resolveHost?: (host: string) => Promise<string[]>;
  /** Present where the target is hosted in a broker (always, in the orchestrator's target services). */
  cluster?: PluginCluster;
  /**
   * A target may push a worker's status as soon as it knows it (an exit, a start): the
   * engine decides at once instead of at its next inspection. `inspect` stays the safety
   * net, so a push that is lost changes nothing but latency.
   */
  pushStatus?(status: TargetStatus): void;
}

/** A validated, normalized job as a task type sees it. */
export interface TaskJob<P = Record<string, unknown>> {
  id: string;
  type: string;
  /** The job's `deploymentId` (every job may carry one; null when it has none). */
  deploymentId: string | null;
  attempt: number;
  params: P;
}

/** A request for a new job (follow-ups, internal callers): the same body as `POST /api/jobs`. */
export interface JobRequest {
  type: string;
  [field: string]: unknown;
}

/** What a worker reported (`POST …/result`), as a task type's `followUps` sees it. */
export interface JobResult {
  success?: boolean;
  imageUrl?: string | null;
  [key: string]: unknown;
}

/**
 * What runs for an attempt. A task type says *what* runs; the target decides *how*:
 * - `worker`: a worker by name (the reference `build-worker` and `deploy-worker`, or a
 *   plugin's own). Container targets (docker, fargate, ec2) run their configured
 *   `workerImage` with `workerImageCommand(worker)` as argv; the process and pool targets
 *   run the host's own copy of a reference worker. Built-in task types only name workers.
 * - `image` + `command`: a plugin that brings its own image (container targets) or an
 *   executable (process target). When both `worker` and `image`/`command` are given,
 *   `image`/`command` win.
 */
export interface Workload {
  /** A worker by name, run from the target's worker image (or the host's copy on process/pool). */
  worker?: string;
  /** The container image, for targets that run images (docker, fargate, ec2). */
  image?: string;
  /** argv; for the process target, an executable on PATH or an absolute path. */
  command?: string[];
  env: Record<string, string>;
  /** Names of secrets the worker may fetch once through its scoped callback; values never travel here. */
  secrets?: string[];
  cpu?: number;
  memoryMb?: number;
}

/** Timeouts in milliseconds; 0 turns a timeout off. */
export interface Timeouts {
  queueTimeout: number;
  startTimeout: number;
  runTimeout: number;
  heartbeatTimeout: number;
  totalTimeout: number;
}

/** Outcomes of a failed attempt, each of which a retry policy may retry. */
export type FailureReason = "LAUNCH_FAILED" | "WORKER_LOST" | "TIMED_OUT" | "EXIT_NONZERO";
export type Jitter = "full" | "equal" | "none";

export interface RetryPolicy {
  maxAttempts: number;
  initialDelay: number;
  backoffCoefficient: number;
  maxDelay: number;
  jitter: Jitter;
  retryOn: FailureReason[];
}

/** A task type's defaults, under the config's `taskTypes.<name>` and the job's own options. */
export interface TaskTypeDefaults {
  target?: string;
  timeouts?: Partial<Timeouts>;
  retry?: Partial<RetryPolicy>;
  priority?: number;
}

export interface TaskType<P = Record<string, unknown>> {
  name: string;
  /**
   * fastest-validator schema of the type's own fields. Unknown fields are removed;
   * `deploymentId` is kept for every type (an optional string of 1-128 letters, digits,
   * `.`, `_`, `-`) unless the schema declares it itself.
   */
  params: ValidationSchema;
  /** Fields whose values are secrets: stored apart, never logged or returned; the worker fetches them once. */
  secretFields?: string[];
  defaults?: TaskTypeDefaults;
  /** Jobs with the same key never run at once (e.g. `deploymentId` for deploy and stop). */
  concurrencyKey?(job: TaskJob<P>): string | null;
  /**
   * When a job of this type is accepted, the other live jobs of this deployment are
   * cancelled (a `stop` ends its deployment's builds and deploys).
   */
  cancelsOnSubmit?(job: TaskJob<P>): { deploymentId: string } | null;
  /** Semantic checks beyond the schema; may normalize `job.params`; throw `fieldError(...)` naming the field. */
  check?(job: TaskJob<P>, ctx: PluginContext): void | Promise<void>;
  /** What to run for an attempt. Called on every launch: keep it pure and fast. */
  toWorkload(job: TaskJob<P>, ctx: PluginContext): Workload;
  /** Jobs to submit once a job succeeded (e.g. a deploy after a build), idempotent by their key. */
  followUps?(job: TaskJob<P>, result: JobResult, ctx: PluginContext): JobRequest[];
}

export type TargetStatus =
  | { key: string; state: "pending" }
  | { key: string; state: "running" }
  | { key: string; state: "exited"; exitCode: number; reason?: string }
  | { key: string; state: "lost"; reason: string };

export interface LaunchRequest {
  jobId: string;
  attempt: number;
  /** `<jobId>:<attempt>` (or `…@<target>` on a fallback): launching twice with one key must yield one worker. */
  key: string;
  workload: Workload;
  labels: Record<string, string>;
}

/** A handle must be plain JSON: it is stored and crosses nodes. It always carries the launch key. */
export interface TargetHandle {
  key: string;
  [field: string]: unknown;
}

export interface LaunchTarget<Config = Record<string, unknown>, Handle extends TargetHandle = TargetHandle> {
  name: string;
  /** fastest-validator schema of the target's config (strict: unknown keys are refused); defaults are filled in. */
  configSchema: ValidationSchema;
  init?(config: Config, ctx: PluginContext): Promise<void>;
  /** Idempotent on `req.key`: concurrent and repeated calls return the same worker's handle. */
  launch(req: LaunchRequest, ctx: PluginContext): Promise<Handle>;
  /** Batched: one status per handle, in any order, matched by `key`; works from `{ key }` alone. */
  inspect(handles: Handle[], ctx: PluginContext): Promise<TargetStatus[]>;
  /** SIGTERM, the grace, then a kill; idempotent: stopping a finished or unknown worker is not an error. */
  stop(handle: Handle, reason: string, ctx: PluginContext): Promise<void>;
  /** The worker's output (a bounded tail). */
  logs?(handle: Handle, ctx: PluginContext): AsyncIterable<string>;
  /**
   * Secrets the target adds to a worker's one-time secrets fetch (GET /api/worker/secrets),
   * e.g. registry credentials or an ECR token fetched right then. Their names must be in
   * the worker's BLACKTREE_SECRETS (the target adds them at launch). Never stored, logged
   * or put in launch parameters.
   */
  workerSecrets?(key: string, ctx: PluginContext): Promise<Record<string, string>>;
  /** Launch keys of every unfinished worker this target runs, to find orphans. */
  list?(ctx: PluginContext): Promise<string[]>;
  close?(): Promise<void>;
}

export interface BlacktreePlugin {
  /** Unique among the loaded plugins; other plugins name it in their `dependencies`. */
  name: string;
  /** The plugin's own version (semver): what other plugins' `dependencies` ranges are checked against. */
  version?: string;
  /** Semver range of the plugin API the plugin works with (e.g. `^1.1.0`), checked against the orchestrator's PLUGIN_API_VERSION. */
  apiVersion: string;
  /**
   * Plugins this one needs, by name and semver range of their `version` (like
   * fastify-plugin's `dependencies`). The loader refuses to start when one is not loaded
   * or its version is outside the range; the order in the config does not matter.
   */
  dependencies?: Record<string, string>;
  taskTypes?: TaskType<any>[];
  /** Factories: each loaded instance owns its resources (clients, processes). Each gets its own config. */
  targets?: Array<() => LaunchTarget<any, any>>;
}

export function definePlugin(plugin: BlacktreePlugin): BlacktreePlugin {
  return plugin;
}

export function defineTaskType<P = Record<string, unknown>>(taskType: TaskType<P>): TaskType<P> {
  return taskType;
}

export function defineTarget<C = Record<string, unknown>, H extends TargetHandle = TargetHandle>(factory: () => LaunchTarget<C, H>): () => LaunchTarget<C, H> {
  return factory;
}
