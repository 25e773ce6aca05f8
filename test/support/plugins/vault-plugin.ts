import { definePlugin, defineTaskType } from "../../../lib/sdk";

/** A test task type with secrets besides `token` (`registryPassword`), as a third party's might have. */
export default definePlugin({
  name: "test-vault",
  apiVersion: "^1.0.0",
  taskTypes: [
    defineTaskType<{ deploymentId: string }>({
      name: "vault",
      params: {
        deploymentId: { type: "string", empty: false, max: 100 },
        token: { type: "string", optional: true },
        registryPassword: { type: "string", optional: true },
      },
      secretFields: ["token", "registryPassword"],
      defaults: { target: "instant" },
      toWorkload: () => ({ command: ["true"], env: {}, secrets: ["token", "registryPassword"] }),
    }),
  ],
});
