/**
 * Test plugin, written as a third party would: `emulated` jobs need no process. On the
 * AWS targets the emulator plays the worker from the env this workload carries (exit
 * code, run time); a `token` secret travels by name only, so tests can look for its value.
 */
import { definePlugin, defineTaskType } from "../../../lib/sdk";

export default definePlugin({
  name: "test-emulated",
  apiVersion: "^1.0.0",
  taskTypes: [
    defineTaskType<{ deploymentId: string; exit: number; runMs: number; untagged: boolean; token?: string }>({
      name: "emulated",
      params: {
        deploymentId: { type: "string", default: "none" },
        exit: { type: "number", integer: true, min: 0, max: 255, default: 0 },
        runMs: { type: "number", integer: true, min: 0, default: 50 },
        untagged: { type: "boolean", default: false },
        token: { type: "string", optional: true },
      },
      secretFields: ["token"],
      toWorkload: (job) => ({
        image: "registry.local/worker:1",
        command: ["worker"],
        env: { BLACKTREE_TEST_EXIT: String(job.params.exit), BLACKTREE_TEST_RUN_MS: String(job.params.runMs), ...(job.params.untagged ? { BLACKTREE_TEST_UNTAGGED: "1" } : {}) },
        secrets: ["token"],
      }),
    }),
  ],
});
