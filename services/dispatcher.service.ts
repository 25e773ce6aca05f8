import type { Context, Service, ServiceSchema } from "moleculer";
import type { StoreChange } from "../lib/store/job-store";
import { STORE_CHANGED_EVENT } from "./changes.service";
import type { NodeEngine } from "../lib/engine/node";

/**
 * Claims runnable jobs within the concurrency limits and launches them (lib/engine/launcher.ts).
 * Wiring only: the engine reacts to the store's commits; the interval is its safety net.
 */
export function dispatcherService(node: NodeEngine): ServiceSchema {
  return {
    name: "dispatcher",
    events: {
      // Another node's commit may have queued a job or freed a slot.
      [STORE_CHANGED_EVENT](this: Service, ctx: Context<StoreChange>) {
        if (ctx.nodeID !== this.broker.nodeID) node.engine.launcher.wake();
      },
    },
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
