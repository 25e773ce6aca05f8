import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { brokerCluster } from "../../lib/cluster";
import { brokerConfig } from "../../moleculer.config";
import { killHard, startEntryPoint } from "./entry-point";
import { tempDir } from "./orchestrator";
import { waitFor } from "./wait";

/** The transporter of the pool tests (real NATS); each test run gets its own Moleculer namespace on it. */
export const TRANSPORTER = process.env.TEST_TRANSPORTER ?? "nats://127.0.0.1:4222";

export const uniqueNamespace = (what: string) => `bt-${what}-${process.pid}-${Date.now().toString(36)}`;

export interface WorkerNode {
  nodeID: string;
  process: ChildProcess;
  dataDir: string;
}

/** Real worker nodes (`bin/worker.ts`) as separate processes on the real transporter. */
export function startWorkers(namespace: string, nodeIDs: string[], env: Record<string, string> = {}): WorkerNode[] {
  return nodeIDs.map((nodeID) => {
    const dataDir = tempDir(`blacktree-${nodeID}-`);
    const child = startEntryPoint(
      { TRANSPORTER: TRANSPORTER, NAMESPACE: namespace, NODE_ID: nodeID, DATA_DIR: path.join(dataDir, "data"), WORKER_CAPACITY: "4", WORKER_STOP_GRACE_MS: "1000", LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn", ...env },
      "worker",
    );
    return { nodeID, process: child, dataDir };
  });
}

export async function stopWorkers(workers: WorkerNode[]): Promise<void> {
  await Promise.all(workers.map((w) => killHard(w.process)));
}

/** A bare broker in the namespace (what hosts the pool target in a test), with its cluster view. */
export async function testBroker(namespace: string, nodeID: string) {
  const broker = new ServiceBroker({ ...brokerConfig({ namespace, nodeId: nodeID, transporter: TRANSPORTER, logLevel: process.env.TEST_LOG_LEVEL ?? "error" }) });
  await broker.start();
  return { broker, cluster: brokerCluster(broker) };
}

/** Until these worker nodes have joined and offer the `worker` service. */
export async function waitForWorkers(cluster: ReturnType<typeof brokerCluster>, nodeIDs: string[], timeout = 60_000): Promise<void> {
  await waitFor(() => nodeIDs.every((id) => cluster.nodesWithService("worker").includes(id)), { timeout, interval: 100, message: `worker nodes ${nodeIDs.join(", ")} joined` });
}
