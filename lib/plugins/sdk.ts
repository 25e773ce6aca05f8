/**
 * The plugin SDK: the public types a plugin is written against, and `define*` helpers
 * that only give them types. Built-in task types and targets use exactly this.
 */
import type { ValidationSchema } from "fastest-validator";
import type { JobResult } from "../jobs/model";
import type { RetryPolicy, Timeouts } from "../jobs/policy";

/** The plugin API version this orchestrator implements; plugins declare a semver range. */
export const PLUGIN_API_VERSION = "1.0.0";

export interface PluginLogger {
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  debug(...args: unknown[]): void;
}

/**
 * The Moleculer cluster, as far as a plugin may use it: call another node's service and
 * see who is connected (how the `pool` target reaches its worker nodes).
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
  deploymentId: string | null;
  attempt: number;
  params: P;
}

/** A request for a new job (follow-ups, internal callers). */
export interface JobRequest {
  type: string;
  [field: string]: unknown;
}

export interface Workload {
  image?: string;
  command?: string[];
  env: Record<string, string>;
  /** Names of secrets the worker may fetch once through its scoped callback; values never travel here. */
  secrets?: string[];
  cpu?: number;
  memoryMb?: number;
}

export interface TaskTypeDefaults {
  target?: string;
  timeouts?: Partial<Timeouts>;
  retry?: Partial<RetryPolicy>;
  priority?: number;
}

export interface TaskType<P = Record<string, unknown>> {
  name: string;
  /** fastest-validator schema of the type's own fields. */
  params: ValidationSchema;
  /** Fields whose values are secrets: stored apart, never logged or returned. */
  secretFields?: string[];
  defaults?: TaskTypeDefaults;
  /** Jobs with the same key never run at once (e.g. `deploymentId` for deploy and stop). */
  concurrencyKey?(job: TaskJob<P>): string | null;
  /**
   * When a job of this type is accepted, the other live jobs of this deployment are
   * cancelled (a `stop` ends its deployment's builds and deploys).
   */
  cancelsOnSubmit?(job: TaskJob<P>): { deploymentId: string } | null;
  /** Semantic checks beyond the schema; throw a VALIDATION_FAILED error naming the field. */
  check?(job: TaskJob<P>, ctx: PluginContext): void | Promise<void>;
  toWorkload(job: TaskJob<P>, ctx: PluginContext): Workload;
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
  /** `<jobId>:<attempt>`: launching twice with one key must yield one worker. */
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
  configSchema: ValidationSchema;
  init?(config: Config, ctx: PluginContext): Promise<void>;
  launch(req: LaunchRequest, ctx: PluginContext): Promise<Handle>;
  /** Batched: one status per handle, in any order, matched by `key`. */
  inspect(handles: Handle[], ctx: PluginContext): Promise<TargetStatus[]>;
  /** Idempotent: stopping a finished worker is not an error. */
  stop(handle: Handle, reason: string, ctx: PluginContext): Promise<void>;
  logs?(handle: Handle, ctx: PluginContext): AsyncIterable<string>;
  /** Launch keys of every worker this target runs, to find orphans. */
  list?(ctx: PluginContext): Promise<string[]>;
  close?(): Promise<void>;
}

export interface BlacktreePlugin {
  name: string;
  /** Semver range of the plugin API the plugin was written for. */
  apiVersion: string;
  taskTypes?: TaskType<any>[];
  /** Factories: each loaded instance owns its resources (clients, processes). */
  targets?: Array<() => LaunchTarget<any, any>>;
}

export function definePlugin(plugin: BlacktreePlugin): BlacktreePlugin {
  return plugin;
}

export function defineTaskType<P = Record<string, unknown>>(taskType: TaskType<P>): TaskType<P> {
  return taskType;
}

export function defineTarget<C = Record<string, unknown>, H extends TargetHandle = TargetHandle>(
  factory: () => LaunchTarget<C, H>,
): () => LaunchTarget<C, H> {
  return factory;
}
