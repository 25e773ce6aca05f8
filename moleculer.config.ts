import os from "node:os";
import type { BrokerOptions, ServiceBroker } from "moleculer";
import type { EnvConfig } from "./lib/config/env";

/** Broker options from the environment: in-process by default, NATS/AMQP with TRANSPORTER. */
export function brokerConfig(env: Pick<EnvConfig, "namespace" | "nodeId" | "transporter" | "logLevel"> & Partial<Pick<EnvConfig, "databaseUrl">>): BrokerOptions {
  return {
    namespace: env.namespace,
    // An orchestrator node (its env has databaseUrl, null for SQLite) says which store it
    // writes to, and since when: an embedded store is one node's (services/changes.service.ts).
    metadata: env.databaseUrl !== undefined ? { store: env.databaseUrl ? "postgres" : "sqlite", startedAt: Date.now() } : {},
    nodeID: env.nodeId ?? `${os.hostname()}-${process.pid}`,
    transporter: transporterOf(env.transporter),
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
    started: announceNode,
  };
}

/**
 * Tells the other nodes about this node's services as soon as it has started. Moleculer 0.14
 * sends that INFO only from a debounced `localServiceChanged` (service-broker.js, 1 s after the
 * last service registered) and answers a DISCOVER without registering the asker, so for a
 * second after start the others do not know this node. Their broadcasts go to the listeners
 * they know (registry.events.getAllEndpoints), so they skipped it: a gateway's streams missed
 * another node's store-changed notices until the next safety poll, a new dispatcher its wake-ups.
 */
export async function announceNode(broker: ServiceBroker): Promise<void> {
  const { discoverer } = broker.registry as unknown as { discoverer: { sendLocalNodeInfo(): Promise<void> } };
  await discoverer.sendLocalNodeInfo();
}

/**
 * The transporter from TRANSPORTER (nats://, amqp://, redis://; none = in-process). The
 * AMQP transporter ships tuned: with Moleculer's defaults (Nagle on, prefetch 1) it made 23
 * calls/s here, each waiting on the broker's delayed ACK; without Nagle and with a prefetch
 * it made 8.2k/s.
 */
export function transporterOf(url: string | null): BrokerOptions["transporter"] {
  if (!url) return undefined;
  if (/^amqps?:\/\//i.test(url)) return { type: "AMQP", options: { url, prefetch: 64, socketOptions: { noDelay: true } } };
  return url;
}

export default brokerConfig;
