import { definePlugin, defineTarget } from "@blacktree/sdk";
import { createPoolTarget } from "./target";

export type { PoolTargetConfig } from "./config";
export { SELECTOR_ENV } from "./config";
export type { PoolHandle } from "./target";
export { createPoolTarget };

/** The `pool` launch target: workloads run on long-lived worker nodes (`npm run worker`) of the cluster. */
export default definePlugin({
  name: "pool",
  apiVersion: "^1.0.0",
  targets: [defineTarget(() => createPoolTarget())],
});
