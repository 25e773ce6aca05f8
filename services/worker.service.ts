import type { Context, ServiceSchema } from "moleculer";
import type { WorkerEnvConfig } from "../lib/config/worker-env";
import { blacktreeError } from "../lib/errors";
import type { LaunchRequest, LaunchTarget, PluginContext, TargetHandle } from "../lib/plugins/sdk";
import { lastLines } from "../lib/plugins/log-lines";
import { asPluginLogger } from "../lib/runtime";
import processPlugin from "../plugins/targets/process";

export const WORKER_SERVICE = "worker";

/** What `worker.status` answers; the pool target picks a node from these. */
export interface WorkerStatus {
  nodeID: string;
  capacity: number;
  /** Workloads running now, plus launches under way. */
  busy: number;
  labels: Record<string, string>;
}


/** Runs tasks one after another (a failed task does not stop the next). */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * A long-lived pool worker node: joins the cluster, advertises its capacity and labels,
 * and runs the workloads the pool target assigns it as child processes through its own
 * instance of the `process` target (used through the plugin API, like any host would).
 * Every action is keyed by the launch key, so the process target's idempotence holds.
 */
export function workerService(settings: WorkerEnvConfig): ServiceSchema {
  const target: LaunchTarget = processPlugin.targets![0]();
  const reserving = new Set<string>();
  const admissions = new SerialQueue();
  let ctx: PluginContext;

  const status = async (nodeID: string): Promise<WorkerStatus> => ({
    nodeID,
    capacity: settings.capacity,
    busy: (await target.list!(ctx)).length + reserving.size,
    labels: settings.labels,
  });

  return {
    name: WORKER_SERVICE,
    metadata: { kind: "pool-worker", capacity: settings.capacity, labels: settings.labels },
    actions: {
      status: {
        visibility: "public",
        handler(this: any) {
          return status(this.broker.nodeID);
        },
      },
      launch: {
        visibility: "public",
        async handler(this: any, c: Context<{ req: LaunchRequest }>) {
          const { req } = c.params;
          const nodeID: string = this.broker.nodeID;
          // Checked and reserved one launch at a time, so concurrent launches never overbook the node.
          await admissions.run(async () => {
            const known = (await target.inspect([{ key: req.key }], ctx))[0]?.state !== "lost";
            // A key this node already runs (or ran) is answered, never refused: launch is idempotent.
            if (!known && (await status(nodeID)).busy >= settings.capacity) {
              throw blacktreeError("LAUNCH_FAILED", `worker node ${nodeID} is full (${settings.capacity} workloads)`, { nodeID, full: true }, { retryable: true });
            }
            reserving.add(req.key);
          });
          try {
            await target.launch(req, ctx);
          } finally {
            reserving.delete(req.key);
          }
          return { key: req.key, nodeID };
        },
      },
      inspect: {
        visibility: "public",
        handler(c: Context<{ keys: string[] }>) {
          return target.inspect(c.params.keys.map((key) => ({ key })), ctx);
        },
      },
      stop: {
        visibility: "public",
        async handler(c: Context<{ key: string; reason: string }>) {
          await target.stop({ key: c.params.key } as TargetHandle, c.params.reason, ctx);
          return { stopped: true };
        },
      },
      logs: {
        visibility: "public",
        async handler(c: Context<{ key: string }>) {
          return { lines: await lastLines(target.logs?.({ key: c.params.key }, ctx)) };
        },
      },
      list: {
        visibility: "public",
        async handler() {
          return { keys: await target.list!(ctx) };
        },
      },
    },
    async started(this: any) {
      ctx = { logger: asPluginLogger(this.logger), dataDir: settings.dataDir, mode: "development", policy: {} };
      await target.init?.({ stopGraceMs: settings.stopGraceMs }, ctx);
      const labels = Object.entries(settings.labels).map(([k, v]) => `${k}=${v}`).join(",") || "none";
      this.logger.info(`✅ worker node ${this.broker.nodeID} ready: capacity ${settings.capacity}, labels ${labels}`);
    },
    async stopped() {
      await target.close?.();
    },
  };
}
