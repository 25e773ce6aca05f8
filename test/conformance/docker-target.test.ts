import { targetConformance } from "../../lib/testkit";
import { createDockerTarget } from "../../plugins/targets/docker";
import { tempDir } from "../support/orchestrator";
import { containersWithLabel, ensureTestImage, removeContainersWithLabel, TEST_IMAGE } from "../support/docker";
import { quietContext } from "../support/quiet-context";

/** The docker target against the suite every target must pass: real containers on the local dockerd, network none. */
const sh = (script: string) => ({ image: TEST_IMAGE, command: ["sh", "-c", script], env: {} });
// A unique label prefix per run keeps this run's containers apart from any other's.
const labelPrefix = `btconf${process.pid}`;

targetConformance(
  "docker",
  async () => {
    ensureTestImage();
    const ctx = quietContext(tempDir("blacktree-conformance-docker-"));
    const target = createDockerTarget();
    const stopGraceMs = 1_000;
    await target.init({ stopGraceMs, labelPrefix, network: "none", retentionMs: 600_000 }, ctx);
    return {
      target,
      ctx,
      stopGraceMs,
      workload: (kind) =>
        ({
          exit0: sh("echo conformance; exit 0"),
          exit3: sh("exit 3"),
          // PID 1 gets no default signal actions: the trap is what makes SIGTERM end it.
          sleep: sh("trap 'exit 143' TERM; sleep 300 & wait"),
          ignoreTerm: sh("trap '' TERM; echo ready; while :; do sleep 1; done"),
        })[kind],
      invalidWorkload: () => ({ image: "local/no-such-image:0", command: ["true"], env: {} }),
      countWorkers: async (key) => containersWithLabel(`${labelPrefix}.key=${key}`).length,
      async teardown() {
        removeContainersWithLabel(`${labelPrefix}.key`);
        await target.close();
      },
    };
  },
  { deadlineMs: 60_000 },
);
