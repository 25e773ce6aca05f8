import type { LoggerInstance, ServiceBroker } from "moleculer";
import type { Runtime } from "../runtime";
import { asPluginLogger } from "../runtime";
import type { PluginLogger, TargetHandle, TargetStatus } from "../plugins/sdk";
import { Engine } from "./engine";
import type { TargetClient } from "./targets";

export const targetServiceName = (target: string) => `targets.${target}`;

/** The event a target host emits for a pushed status; the node running the clock decides on it. */
export const TARGET_STATUS_EVENT = "engine.targetStatus";

/**
 * The engine of one node, reaching targets and the intake through the broker. The broker
 * is known only once a service is created, so the node's services bind it then.
 */
export class NodeEngine {
  readonly engine: Engine;
  private broker: ServiceBroker | null = null;
  private log: LoggerInstance | null = null;

  constructor(rt: Runtime) {
    const logger: PluginLogger = {
      info: (...a) => this.logger().info(...a),
      warn: (...a) => this.logger().warn(...a),
      error: (...a) => this.logger().error(...a),
      debug: (...a) => this.logger().debug(...a),
    };
    this.engine = new Engine({
      store: rt.store,
      targets: brokerTargets(() => this.need()),
      registry: rt.registry,
      config: rt.config,
      tokens: rt.callbackTokens,
      settings: {
        reconcileIntervalMs: rt.env.reconcileIntervalMs,
        dispatchIntervalMs: rt.env.dispatchIntervalMs,
        reapIntervalMs: rt.env.reapIntervalMs,
        relaunchAfterMs: rt.env.relaunchAfterMs,
        publicUrl: rt.env.publicUrl,
        holder: () => this.need().nodeID,
      },
      logger,
      plugin: rt.pluginContext(logger),
      submit: (body, opts) => this.need().call("intake.submit", { body, source: "internal", ...opts }),
      now: Date.now,
      tracing: rt.tracing,
    });
  }

  bind(broker: ServiceBroker): void {
    this.broker ??= broker;
  }

  onPushedStatus(status: TargetStatus): void {
    void this.engine.reconciler.onStatus(status);
  }

  private need(): ServiceBroker {
    if (!this.broker) throw new Error("the engine is used before its node's broker exists");
    return this.broker;
  }

  private logger(): PluginLogger {
    this.log ??= this.need().getLogger("engine");
    return asPluginLogger(this.log);
  }
}

function brokerTargets(broker: () => ServiceBroker): TargetClient {
  const call = <T>(target: string, action: string, params: object, timeout: number) => broker().call<T, object>(`${targetServiceName(target)}.${action}`, params, { timeout, retries: 0 });
  return {
    launch: (target, req, timeout) => call<TargetHandle>(target, "launch", req, timeout),
    inspect: (target, handles) => call<TargetStatus[]>(target, "inspect", { handles }, 30_000),
    stop: async (target, handle, reason) => {
      await call(target, "stop", { handle, reason }, 120_000);
    },
    logs: async (target, handle) => (await call<{ lines: string[] }>(target, "logs", { handle }, 10_000)).lines,
    list: async (target) => (await call<{ keys: string[] | null }>(target, "list", {}, 30_000)).keys,
    workerSecrets: async (target, key) => (await call<{ secrets: Record<string, string> }>(target, "workerSecrets", { key }, 30_000)).secrets,
  };
}
