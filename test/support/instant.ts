import path from "node:path";
import type { PluginsConfig } from "../../lib/config/plugins-config";

export const INSTANT_PLUGIN = path.join(__dirname, "plugins/instant");

/** Adds the instant target and routes builds to it, with limits that let hundreds run at once. */
export function useInstantTarget(config: PluginsConfig): void {
  config.plugins.push({ use: INSTANT_PLUGIN, config: {} } as PluginsConfig["plugins"][number]);
  config.routing.byType.build = "instant";
  config.limits = { global: 500, byType: { build: 500 } } as PluginsConfig["limits"];
}
