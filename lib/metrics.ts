import client from "prom-client";
import type { JobStore } from "./store/job-store";

/** One prom-client registry for the node; `/metrics` serves it. */
export const metricsRegistry = new client.Registry();
// prom-client names its defaults `process_*` and `nodejs_*` already: the prefix is ours only.
client.collectDefaultMetrics({ register: metricsRegistry, prefix: "blacktree_" });

let storeForGauges: JobStore | null = null;

export const jobMetrics = {
  jobs: new client.Gauge({
    name: "blacktree_jobs",
    help: "Jobs by state, type and target (counted from the store at scrape time)",
    labelNames: ["state", "type", "target"],
    registers: [metricsRegistry],
    async collect() {
      if (!storeForGauges) return;
      this.reset();
      for (const row of await storeForGauges.countByState()) this.set({ state: row.state, type: row.type, target: row.target ?? "" }, row.count);
    },
  }),
  transitions: new client.Counter({ name: "blacktree_job_transitions_total", help: "Job state transitions seen by this node's status service", labelNames: ["to", "type"], registers: [metricsRegistry] }),
  duration: new client.Histogram({
    name: "blacktree_job_duration_seconds",
    help: "Time from submission to a final state",
    labelNames: ["type", "state"],
    buckets: [1, 5, 15, 60, 300, 900, 1800, 3600],
    registers: [metricsRegistry],
  }),
  queueWait: new client.Histogram({
    name: "blacktree_job_queue_wait_seconds",
    help: "Time from submission to the launch of each attempt (retries include their backoff)",
    labelNames: ["type"],
    buckets: [0.05, 0.25, 1, 5, 15, 60, 300],
    registers: [metricsRegistry],
  }),
  launchErrors: new client.Counter({ name: "blacktree_launch_errors_total", help: "Failed launches by target and error type", labelNames: ["target", "type"], registers: [metricsRegistry] }),
  launchFallbacks: new client.Counter({ name: "blacktree_launch_fallbacks_total", help: "Attempts moved to the next target of routing.fallback after a retryable launch failure", labelNames: ["from", "to"], registers: [metricsRegistry] }),
};

export const clockMetrics = {
  tick: new client.Histogram({
    name: "blacktree_clock_tick_seconds",
    help: "Duration of one pass of the clock over due deadlines and backoffs",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
    registers: [metricsRegistry],
  }),
};

export function bindMetricsStore(store: JobStore | null): void {
  storeForGauges = store;
}

/**
 * One registry's worth of metrics from several nodes, summed (prom-client's aggregator,
 * made for the same job across cluster workers): a cluster's /metrics counts every node.
 */
export async function aggregateMetrics(perNode: object[][]): Promise<string> {
  return client.AggregatorRegistry.aggregate(perNode as Parameters<typeof client.AggregatorRegistry.aggregate>[0]).metrics();
}
