import path from "node:path";
import type { PluginsConfig } from "../../lib/config/plugins-config";
import type { AwsEmulator } from "./aws-emulator";

/** The test plugin with `emulated` jobs: on the AWS targets the emulator plays the worker from their env, so nothing runs. */
export const EMULATED_PLUGIN = path.join(__dirname, "plugins/emulated-plugin.ts");

/** Loads the fargate and ec2 targets against the emulator, with fast polling and the given extras. */
export function useAwsTargets(c: PluginsConfig, emu: AwsEmulator, extra: { fargate?: Record<string, unknown>; ec2?: Record<string, unknown> } = {}): void {
  c.plugins.push({ use: EMULATED_PLUGIN });
  c.plugins.push({
    use: "./plugins/targets/fargate",
    config: { cluster: "it", taskDefinition: "worker:1", containerName: "worker", subnets: ["subnet-1"], endpoint: emu.endpoint, pollMs: 50, maxAttempts: 3, ...extra.fargate },
  });
  c.plugins.push({
    use: "./plugins/targets/ec2",
    config: { imageId: "ami-1", instanceType: "t3.small", defaultImage: "registry.local/worker:1", endpoint: emu.endpoint, runInstancesPerSecond: 50, maxAttempts: 3, ...extra.ec2 },
  });
}
