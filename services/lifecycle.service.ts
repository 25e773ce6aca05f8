import type { Context, Service, ServiceSchema } from "moleculer";
import type { StoreChange } from "../lib/store/job-store";
import { STORE_CHANGED_EVENT } from "./changes.service";
import type { WorkerCall } from "../lib/engine/callbacks";
import { NodeEngine, TARGET_STATUS_EVENT } from "../lib/engine/node";
import { jobView } from "../lib/jobs/model";
import type { JobResult } from "../lib/jobs/model";
import type { TargetStatus } from "../lib/plugins/sdk";

/**
 * The clock (lib/engine: reconciler, timers, effects, reaper), cancel and retry, and the
 * worker callbacks the gateway forwards. Wiring only.
 */
export function lifecycleService(node: NodeEngine): ServiceSchema {
  const { engine } = node;
  return {
    name: "lifecycle",
    events: {
      [TARGET_STATUS_EVENT](ctx: Context<{ status: TargetStatus }>) {
        node.onPushedStatus(ctx.params.status);
      },
      [STORE_CHANGED_EVENT](this: Service, ctx: Context<StoreChange>) {
        if (ctx.nodeID !== this.broker.nodeID) engine.onChange(ctx.params);
      },
    },
    actions: {
      cancel: {
        visibility: "public",
        async handler(ctx: Context<{ id: string; reason?: string; by?: string }>) {
          return jobView(await engine.canceller.cancel(ctx.params.id, ctx.params.reason ?? "cancelled on request", ctx.params.by ?? "api"));
        },
      },
      retry: {
        visibility: "public",
        async handler(ctx: Context<{ id: string; by?: string }>) {
          return jobView(await engine.canceller.retry(ctx.params.id, ctx.params.by ?? "api"));
        },
      },
      workerStarted: { visibility: "public", handler: (ctx: Context<WorkerCall>) => engine.callbacks.started(ctx.params).then(ok) },
      workerHeartbeat: { visibility: "public", handler: (ctx: Context<WorkerCall>) => engine.callbacks.heartbeat(ctx.params).then(ok) },
      workerResult: { visibility: "public", handler: (ctx: Context<WorkerCall & { result: JobResult }>) => engine.callbacks.result(ctx.params).then(ok) },
      workerLog: { visibility: "public", handler: (ctx: Context<WorkerCall & { lines: string[] }>) => engine.callbacks.log(ctx.params).then(ok) },
      workerSecrets: { visibility: "public", handler: async (ctx: Context<WorkerCall>) => ({ secrets: await engine.callbacks.secrets(ctx.params) }) },
      /** One reconcile pass now (tests and operators). */
      tick: {
        visibility: "public",
        async handler() {
          await engine.sweepClock();
          return { ok: true };
        },
      },
    },
    created() {
      node.bind(this.broker);
    },
    started() {
      engine.start("clock");
    },
    async stopped() {
      await engine.stop(30_000);
    },
  };
}

const ok = () => ({ ok: true });
