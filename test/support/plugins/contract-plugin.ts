/**
 * Test plugin, written as a third party would: `contract` jobs run
 * test/support/workers/contract-worker.ts, which reports through the SDK's worker client.
 */
import path from "node:path";
import { definePlugin, defineTaskType, nodeWorkerCommand } from "@blacktree/sdk";

export const contractTaskType = defineTaskType<{ mode: string; exitCode: number }>({
  name: "contract",
  params: { mode: { type: "enum", values: ["report", "fail", "linger"] }, exitCode: { type: "number", integer: true, default: 1 }, apiToken: { type: "string", optional: true } },
  secretFields: ["apiToken"],
  toWorkload: (job) => ({
    command: nodeWorkerCommand(path.join(__dirname, "../workers/contract-worker")),
    env: { CONTRACT_MODE: job.params.mode, CONTRACT_EXIT: String(job.params.exitCode) },
    secrets: ["apiToken"],
  }),
});

export default definePlugin({ name: "test-contract", version: "1.0.0", apiVersion: "^1.1.0", taskTypes: [contractTaskType] });
