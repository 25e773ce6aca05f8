import { targetConformance } from "../../lib/testkit";
import { createEc2Target } from "../../plugins/targets/ec2";
import { startAwsEmulator, useDummyAwsCredentials, type AwsEmulator } from "../support/aws-emulator";
import { tempDir } from "../support/orchestrator";
import { quietContext } from "../support/quiet-context";

/**
 * The ec2 target against the suite every target must pass: the real EC2 client against
 * the local AWS emulator, whose instances follow the script in their user data's env.
 */
let emu: AwsEmulator;

targetConformance("ec2", async () => {
  useDummyAwsCredentials();
  emu = await startAwsEmulator({ ec2: { phaseMs: 50 } });
  const ctx = quietContext(tempDir("blacktree-conformance-ec2-"));
  const target = createEc2Target();
  await target.init({ imageId: "ami-0emulator", instanceType: "t3.small", subnetId: "subnet-1", securityGroupIds: ["sg-1"], instanceProfile: "blacktree-worker", endpoint: emu.endpoint, runInstancesPerSecond: 50 }, ctx);
  const env = (script: Record<string, string>) => ({ image: "registry.local/worker:1", command: ["worker"], env: { BLACKTREE_JOB_ID: "conformance", ...script } });
  return {
    target,
    ctx,
    // TerminateInstances kills at once as far as the target can tell (the instance's own shutdown gives
    // the container docker's SIGTERM): no grace to wait out.
    stopGraceMs: 0,
    workload: (kind) =>
      ({
        exit0: env({ BLACKTREE_TEST_EXIT: "0", BLACKTREE_TEST_RUN_MS: "100" }),
        exit3: env({ BLACKTREE_TEST_EXIT: "3", BLACKTREE_TEST_RUN_MS: "100" }),
        sleep: env({ BLACKTREE_TEST_RUN_MS: "600000" }),
        // Termination does not ask the worker: ignoring SIGTERM changes nothing on EC2.
        ignoreTerm: env({ BLACKTREE_TEST_RUN_MS: "600000", BLACKTREE_TEST_IGNORE_TERM: "1" }),
      })[kind],
    // EC2 takes at most 16 KB of user data: the target must refuse first.
    invalidWorkload: () => ({ image: "registry.local/worker:1", command: ["worker"], env: { HUGE: "x".repeat(17_000) } }),
    countWorkers: async (key) => emu.ec2.instancesTagged("blacktree.key", key).length,
    async teardown() {
      await target.close();
      await emu.stop();
    },
  };
});
