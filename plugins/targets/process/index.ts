import { definePlugin, defineTarget } from "@blacktree/sdk";
import { createProcessTarget } from "./target";

export type { ProcessTargetConfig } from "./config";
export type { ProcessHandle } from "./target";
export { createProcessTarget };

/** The `process` launch target: each worker is a child process of this machine (Linux). */
export default definePlugin({
  name: "process",
  apiVersion: "^1.0.0",
  targets: [defineTarget(() => createProcessTarget())],
});
