import type { PluginContext } from "../../lib/sdk";

/** A plugin context for tests that call a target directly; logs only with TEST_LOG_LEVEL set. */
export function quietContext(dataDir: string): PluginContext {
  const log = process.env.TEST_LOG_LEVEL ? (...args: unknown[]) => console.log(...args) : () => undefined;
  return { logger: { info: log, warn: log, error: log, debug: log }, dataDir, mode: "development", policy: {} };
}
