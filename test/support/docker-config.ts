import path from "node:path";
import type { PluginsConfig } from "../../lib/config/plugins-config";

/**
 * Adds the docker target and the container test plugin to a plugins config: `container-script`
 * is routed to docker, `container-script-b` is not (a job may still ask for docker itself).
 */
export function withDocker(config: PluginsConfig, labelPrefix: string): PluginsConfig {
  config.plugins.push(
    { use: path.join(__dirname, "plugins/container-plugin.ts") },
    { use: "./plugins/targets/docker", config: { network: "none", stopGraceMs: 2_000, labelPrefix } },
  );
  config.routing.byType["container-script"] = "docker";
  return config;
}
