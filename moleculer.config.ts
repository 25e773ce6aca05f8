import os from "node:os";
import type { BrokerOptions } from "moleculer";
import type { EnvConfig } from "./lib/config/env";

/** Broker options from the environment: in-process by default, NATS/AMQP with TRANSPORTER. */
export function brokerConfig(env: Pick<EnvConfig, "namespace" | "nodeId" | "transporter" | "logLevel">): BrokerOptions {
  return {
    namespace: env.namespace,
    nodeID: env.nodeId ?? `${os.hostname()}-${process.pid}`,
    transporter: env.transporter ?? undefined,
    logger: {
      type: "Console",
      options: { level: env.logLevel, colors: process.stdout.isTTY === true, moduleColors: false, formatter: "short", autoPadding: false },
    },
    // Plain JSON on the wire: errors cross nodes as objects with `type` and `retryable`.
    serializer: "JSON",
    requestTimeout: 30_000,
    heartbeatInterval: 5,
    heartbeatTimeout: 15,
    registry: { strategy: "RoundRobin", preferLocal: true },
    metrics: false,
    tracing: false,
  };
}

export default brokerConfig;
