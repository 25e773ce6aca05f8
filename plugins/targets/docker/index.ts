import { definePlugin, defineTarget } from "@blacktree/sdk";
import { createDockerTarget } from "./target";

export type { DockerTargetConfig } from "./config";
export type { DockerHandle } from "./target";
export { createDockerTarget };

/** The `docker` launch target: each worker is a container on a Docker engine (network `none` by default). */
export default definePlugin({
  name: "docker",
  apiVersion: "^1.0.0",
  targets: [defineTarget(() => createDockerTarget())],
});
