import type { ServiceBroker } from "moleculer";
import { targetConformance } from "../../lib/testkit";
import { createPoolTarget } from "../../plugins/targets/pool";
import { tempDir } from "../support/orchestrator";
import { startWorkers, stopWorkers, testBroker, uniqueNamespace, waitForWorkers } from "../support/pool";
import { quietContext } from "../support/quiet-context";

/** The pool target against the suite every target must pass: two real worker node processes over a real transporter (Redis; see test/support/pool.ts). */
const sh = (script: string) => ["/bin/sh", "-c", script];

targetConformance(
  "pool",
  async () => {
    const namespace = uniqueNamespace("pool-conf");
    const workers = startWorkers(namespace, [`${namespace}-w1`, `${namespace}-w2`]);
    let broker: ServiceBroker | undefined;
    const target = createPoolTarget();
    const teardown = async () => {
      if (broker) for (const key of await target.list(ctx).catch(() => [])) await target.stop({ key } as never, "teardown", ctx);
      await broker?.stop();
      await stopWorkers(workers);
    };
    const ctx = quietContext(tempDir("blacktree-conformance-pool-"));
    try {
      const joined = await testBroker(namespace, `${namespace}-orchestrator`);
      broker = joined.broker;
      ctx.cluster = joined.cluster;
      await waitForWorkers(joined.cluster, workers.map((w) => w.nodeID));
      await target.init({ callTimeoutMs: 10_000 }, ctx);
    } catch (err) {
      await teardown();
      throw err;
    }
    return {
      target,
      ctx,
      stopGraceMs: 1_000,
      workload: (kind) =>
        ({
          exit0: { command: sh("echo conformance; exit 0"), env: {} },
          exit3: { command: sh("exit 3"), env: {} },
          sleep: { command: ["sleep", "300"], env: {} },
          ignoreTerm: { command: sh("trap '' TERM; echo ready; while :; do sleep 1; done"), env: {} },
        })[kind],
      invalidWorkload: () => ({ command: ["/nonexistent/blacktree-conformance"], env: {} }),
      teardown,
    };
  },
  { deadlineMs: 30_000 },
);
