import { definePlugin } from "@blacktree/sdk";
import { acmeTarget } from "./target";
import { acmeReport } from "./task-type";

export { acmeReport, acmeTarget };

/** What `"use": "blacktree-plugin-acme"` (or its directory) loads: one task type, one target. */
export default definePlugin({
  name: "acme",
  version: "1.0.0",
  apiVersion: "^1.1.0",
  taskTypes: [acmeReport],
  targets: [acmeTarget],
});
