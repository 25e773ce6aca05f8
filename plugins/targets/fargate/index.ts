import { definePlugin, defineTarget } from "@blacktree/sdk";
import { createFargateTarget } from "./target";

export type { FargateTargetConfig } from "./config";
export type { FargateHandle } from "./target";
export { createFargateTarget };

/** The `fargate` launch target: each worker is an ECS task on AWS Fargate. */
export default definePlugin({
  name: "fargate",
  apiVersion: "^1.0.0",
  targets: [defineTarget(() => createFargateTarget())],
});
