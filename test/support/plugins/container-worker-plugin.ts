/**
 * Test plugin, written as a third party would: `container-worker` jobs run /app/worker.js
 * of the image they name (test/support/node-image.ts builds one with Node and the SDK).
 */
import { definePlugin, defineTaskType } from "@blacktree/sdk";

export default definePlugin({
  name: "test-container-worker",
  apiVersion: "^1.1.0",
  taskTypes: [
    defineTaskType<{ image: string }>({
      name: "container-worker",
      params: { image: { type: "string", empty: false }, apiToken: { type: "string", optional: true } },
      secretFields: ["apiToken"],
      toWorkload: (job) => ({ image: job.params.image, command: ["node", "/app/worker.js"], env: {}, secrets: ["apiToken"] }),
    }),
  ],
});
