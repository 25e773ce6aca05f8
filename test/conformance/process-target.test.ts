import fs from "node:fs";
import { targetConformance } from "../../lib/testkit";
import { createProcessTarget } from "../../plugins/targets/process";
import { tempDir } from "../support/orchestrator";
import { quietContext } from "../support/quiet-context";

/** The reference target against the suite every target must pass: real child processes. */
const sh = (script: string) => ["/bin/sh", "-c", script];

targetConformance("process", async () => {
  const dataDir = tempDir("blacktree-conformance-process-");
  const ctx = quietContext(dataDir);
  const target = createProcessTarget();
  const stopGraceMs = 1_000;
  await target.init({ stopGraceMs }, ctx);
  return {
    target,
    ctx,
    stopGraceMs,
    workload: (kind) =>
      ({
        exit0: { command: sh("echo conformance; exit 0"), env: {} },
        exit3: { command: sh("exit 3"), env: {} },
        sleep: { command: ["sleep", "300"], env: {} },
        ignoreTerm: { command: sh("trap '' TERM; echo ready; while :; do sleep 1; done"), env: {} },
      })[kind],
    invalidWorkload: () => ({ command: ["/nonexistent/blacktree-conformance"], env: {} }),
    async teardown() {
      for (const key of await target.list(ctx)) await target.stop({ key, pid: 0, startTime: 0 }, "teardown", ctx);
      await target.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
});
