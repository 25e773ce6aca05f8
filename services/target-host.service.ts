import type { Context, ServiceSchema } from "moleculer";
import type { LoadedTarget } from "../lib/plugins/registry";
import type { LaunchRequest, PluginContext, TargetHandle } from "../lib/plugins/sdk";
import { brokerCluster } from "../lib/cluster";
import { lastLines } from "../lib/plugins/log-lines";
import { targetServiceName, TARGET_STATUS_EVENT } from "../lib/engine/node";
import { asPluginLogger, Runtime } from "../lib/runtime";

export { targetServiceName };

/**
 * Hosts one launch target as the Moleculer service `targets.<name>`, so the target can
 * live on the node that holds its credentials or its Docker socket; the dispatcher and
 * lifecycle reach it through the broker.
 */
export function targetHostService(rt: Runtime, loaded: LoadedTarget): ServiceSchema {
  const { target, config } = loaded;
  let ctx: PluginContext;
  return {
    name: targetServiceName(target.name),
    metadata: { kind: "launch-target", target: target.name, plugin: loaded.plugin },
    actions: {
      launch: {
        visibility: "public",
        async handler(c: Context<LaunchRequest>) {
          return target.launch(c.params, ctx);
        },
      },
      inspect: {
        visibility: "public",
        async handler(c: Context<{ handles: TargetHandle[] }>) {
          return target.inspect(c.params.handles, ctx);
        },
      },
      stop: {
        visibility: "public",
        async handler(c: Context<{ handle: TargetHandle; reason: string }>) {
          await target.stop(c.params.handle, c.params.reason, ctx);
          return { stopped: true };
        },
      },
      logs: {
        visibility: "public",
        async handler(c: Context<{ handle: TargetHandle }>) {
          return { lines: await lastLines(target.logs?.(c.params.handle, ctx)) };
        },
      },
      /** Registry credentials for a worker's one-time secrets fetch: the answer goes to the worker only, never to a log. */
      workerSecrets: {
        visibility: "public",
        async handler(c: Context<{ key: string }>) {
          return { secrets: target.workerSecrets ? await target.workerSecrets(c.params.key, ctx) : {} };
        },
      },
      list: {
        visibility: "public",
        async handler() {
          return { keys: target.list ? await target.list(ctx) : null };
        },
      },
    },
    async started() {
      ctx = {
        ...rt.pluginContext(asPluginLogger(this.logger)),
        cluster: brokerCluster(this.broker),
        // To whichever node runs the clock: it decides on the status at once.
        pushStatus: (status) => void this.broker.emit(TARGET_STATUS_EVENT, { status }),
      };
      await target.init?.(config, ctx);
      this.logger.info(`✅ launch target '${target.name}' ready`);
    },
    async stopped() {
      await target.close?.();
    },
  };
}
