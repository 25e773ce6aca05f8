import { definePlugin, defineTarget } from "@blacktree/sdk";
import { createEc2Target } from "./target";

export type { Ec2TargetConfig } from "./config";
export type { Ec2Handle } from "./target";
export { createEc2Target };

/** The `ec2` launch target: each worker is a container on its own EC2 instance, which terminates when the worker ends. */
export default definePlugin({
  name: "ec2",
  apiVersion: "^1.0.0",
  targets: [defineTarget(() => createEc2Target())],
});
