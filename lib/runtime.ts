import path from "node:path";
import type { LoggerInstance } from "moleculer";
import { ApiKeys, KEYS_FILE, loadApiKeys } from "./auth/api-keys";
import { CallbackTokens, loadCallbackSecret } from "./auth/callback-token";
import { StreamTokens } from "./auth/stream-token";
import { loadSecretBox } from "./secrets/secret-box";
import { HostResolver, systemResolver } from "./plugins/repository-host";
import { EnvConfig, loadEnvConfig } from "./config/env";
import { loadPluginsConfig, PluginsConfig } from "./config/plugins-config";
import { loadPlugins } from "./plugins/loader";
import { PluginRegistry } from "./plugins/registry";
import type { PluginContext, PluginLogger } from "./plugins/sdk";
import { createTracing, type Tracing } from "./tracing";
import { createStore } from "./store";
import type { JobStore } from "./store/job-store";

/** Everything the services share on one node: configuration, plugins, the store. */
export interface Runtime {
  env: EnvConfig;
  config: PluginsConfig;
  registry: PluginRegistry;
  store: JobStore;
  callbackTokens: CallbackTokens;
  /** Short-lived tokens of the stream routes (`?token=`), signed under a key derived from the callback secret. */
  streamTokens: StreamTokens;
  apiKeys: ApiKeys;
  /** Set on the first development start: where the generated admin key was written. */
  generatedAdminKeyFile: string | null;
  /** Job traces (no-op unless OTEL_EXPORTER_OTLP_ENDPOINT is set). */
  tracing: Tracing;
  pluginContext(logger: PluginLogger): PluginContext;
}

/** Loads config and plugins (before the broker starts: a plugin error stops start-up with its code). */
export async function createRuntime(opts: { env?: NodeJS.ProcessEnv; cwd?: string; store?: JobStore; config?: PluginsConfig; resolveHost?: HostResolver } = {}): Promise<Runtime> {
  const vars = opts.env ?? process.env;
  const env = loadEnvConfig(vars, opts.cwd);
  const config = opts.config ?? loadPluginsConfig(env.pluginsConfig, vars, env.mode);
  const registry: PluginRegistry = loadPlugins(config, { baseDir: path.dirname(env.pluginsConfig) });
  // Credentials first: production refuses to start without them, before anything is opened.
  const auth = loadApiKeys({ spec: env.apiKeys, file: path.join(env.dataDir, KEYS_FILE), pepper: env.apiKeyPepper, dataDir: env.dataDir, mode: env.mode });
  const secrets = loadSecretBox({ key: env.secretsKey, previous: env.secretsKeyPrevious, dataDir: env.dataDir, mode: env.mode });
  const callbackSecret = loadCallbackSecret(env.callbackSecret, env.dataDir);
  const callbackTokens = new CallbackTokens(callbackSecret);
  const store = opts.store ?? createStore({ databaseUrl: env.databaseUrl ?? undefined, poolSize: env.databasePoolSize, dataDir: env.dataDir, secrets, ownNode: true });
  await store.migrate();
  return {
    env,
    config,
    registry,
    store,
    callbackTokens,
    streamTokens: new StreamTokens(callbackSecret),
    apiKeys: auth.keys,
    generatedAdminKeyFile: auth.generatedAdminKeyFile,
    tracing: createTracing(env.tracing),
    pluginContext: (logger) => ({ logger, dataDir: env.dataDir, mode: env.mode, policy: config.policy, resolveHost: opts.resolveHost ?? systemResolver }),
  };
}

export function asPluginLogger(logger: LoggerInstance): PluginLogger {
  return logger as unknown as PluginLogger;
}
