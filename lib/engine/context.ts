import type { CallbackTokens } from "../auth/callback-token";
import type { PluginsConfig } from "../config/plugins-config";
import type { PluginRegistry } from "../plugins/registry";
import type { JobRequest, PluginContext, PluginLogger } from "../plugins/sdk";
import type { JobStore } from "../store/job-store";
import type { Tracing } from "../tracing";
import type { TargetClient } from "./targets";

/** Submits a job the engine creates (a follow-up); validation and storing are the intake's. */
export type SubmitJob = (
  body: JobRequest,
  /** `traceparent`: the parent's trace, which the follow-up's joins. */
  opts: { parentId: string; idempotencyKey: string; submittedBy: string | null; traceparent?: string | null },
) => Promise<{ job: { id: string; type: string }; created: boolean }>;

export interface EngineSettings {
  /** The safety net: how often the clock looks at what no notification announced. */
  reconcileIntervalMs: number;
  dispatchIntervalMs: number;
  reapIntervalMs: number;
  /** An attempt without a handle and no launch in flight is launched again after this long. */
  relaunchAfterMs: number;
  /** Base URL of the worker callbacks. */
  publicUrl: string;
  /** Who holds this node's leases (its node id). */
  holder: () => string;
}

/** What every part of the engine is built from: plain objects, no broker. */
export interface EngineContext {
  store: JobStore;
  targets: TargetClient;
  registry: PluginRegistry;
  config: PluginsConfig;
  tokens: CallbackTokens;
  settings: EngineSettings;
  logger: PluginLogger;
  plugin: PluginContext;
  submit: SubmitJob;
  now: () => number;
  /** Job traces (lib/tracing.ts); none when left out. */
  tracing?: Tracing;
}
