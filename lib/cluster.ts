import type { ServiceBroker } from "moleculer";
import type { PluginCluster } from "./plugins/sdk";

/** The broker seen through the plugin SDK's small `PluginCluster` window. */
export function brokerCluster(broker: ServiceBroker): PluginCluster {
  return {
    call: (action, params, opts = {}) => broker.call(action, params, { nodeID: opts.nodeID, timeout: opts.timeoutMs, retries: 0 }),
    nodesWithService: (service) =>
      broker.registry
        .getServiceList({ onlyAvailable: true, skipInternal: true })
        .filter((s) => s.name === service)
        .map((s) => (s as unknown as { nodeID: string }).nodeID),
    isNodeAvailable: (nodeID) => broker.registry.nodes.get(nodeID)?.available === true,
  };
}
