import type { ServiceSchema } from "moleculer";
import type { NodeEngine } from "../lib/engine/node";

/**
 * Claims runnable jobs within the concurrency limits and launches them (lib/engine/launcher.ts).
 * Wiring only: the engine reacts to the store's commits; the interval is its safety net.
 */
export function dispatcherService(node: NodeEngine): ServiceSchema {
  return {
    name: "dispatcher",
    created() {
      node.bind(this.broker);
    },
    started() {
      node.engine.start("launcher");
    },
    async stopped() {
      await node.engine.launcher.stop(30_000);
    },
  };
}
