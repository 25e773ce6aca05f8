import { targetConformance } from "../../lib/testkit";
import { createFargateTarget } from "../../plugins/targets/fargate";
import { startAwsEmulator, useDummyAwsCredentials, type AwsEmulator } from "../support/aws-emulator";
import { tempDir } from "../support/orchestrator";
import { quietContext } from "../support/quiet-context";

/**
 * The fargate target against the suite every target must pass: the real ECS client
 * against the local AWS emulator, whose tasks follow the script in their env.
 */
const KILL_AFTER_MS = 500; // the emulated container's stopTimeout: SIGTERM → SIGKILL
let emu: AwsEmulator;

targetConformance("fargate", async () => {
  useDummyAwsCredentials();
  emu = await startAwsEmulator({ ecs: { phaseMs: 50, killAfterMs: KILL_AFTER_MS } });
  const ctx = quietContext(tempDir("blacktree-conformance-fargate-"));
  const target = createFargateTarget();
  await target.init({ cluster: "conformance", taskDefinition: "blacktree-worker:1", containerName: "worker", subnets: ["subnet-1"], endpoint: emu.endpoint, pollMs: 50, stopWaitMs: 10_000 }, ctx);
  const env = (script: Record<string, string>) => ({ command: ["worker"], env: { BLACKTREE_JOB_ID: "conformance", ...script } });
  return {
    target,
    ctx,
    stopGraceMs: KILL_AFTER_MS,
    workload: (kind) =>
      ({
        exit0: env({ BLACKTREE_TEST_EXIT: "0", BLACKTREE_TEST_RUN_MS: "100" }),
        exit3: env({ BLACKTREE_TEST_EXIT: "3", BLACKTREE_TEST_RUN_MS: "100" }),
        sleep: env({ BLACKTREE_TEST_RUN_MS: "600000" }),
        ignoreTerm: env({ BLACKTREE_TEST_RUN_MS: "600000", BLACKTREE_TEST_IGNORE_TERM: "1" }),
      })[kind],
    // ECS refuses container overrides over 8,192 characters: the target must refuse first.
    invalidWorkload: () => ({ command: ["worker"], env: { HUGE: "x".repeat(9_000) } }),
    countWorkers: async (key) => emu.ecs.tasksTagged("blacktree.key", key).length,
    async teardown() {
      await target.close();
      await emu.stop();
    },
  };
});
