/**
 * Test plugin, written as a third party would: a `faulty` job's `check()` throws a plain
 * TypeError (a bug, not a validation failure) for its first `failTimes` checks, counted per
 * deploymentId in FAULTY_CHECKS under the node's data dir; then it passes. With `leak`, the
 * error message carries the message's `token` (it must never reach a log or a dead letter).
 */
import fs from "node:fs";
import path from "node:path";
import { definePlugin, defineTaskType } from "../../../lib/sdk";

/** One line per check() call: the job's deploymentId. */
export const FAULTY_CHECKS = "faulty-checks.log";

export function faultyChecks(dataDir: string, deploymentId: string): number {
  const file = path.join(dataDir, FAULTY_CHECKS);
  if (!fs.existsSync(file)) return 0;
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l === deploymentId).length;
}

export default definePlugin({
  name: "test-faulty",
  apiVersion: "^1.0.0",
  taskTypes: [
    defineTaskType<{ deploymentId: string; failTimes: number; leak: boolean; token?: string }>({
      name: "faulty",
      params: {
        deploymentId: { type: "string" },
        failTimes: { type: "number", integer: true, min: 0, default: 1_000_000 },
        leak: { type: "boolean", default: false },
        // Not a secret field on purpose: check() sees it, as a careless plugin might.
        token: { type: "string", optional: true },
      },
      defaults: { target: "instant" },
      async check(job, ctx) {
        fs.appendFileSync(path.join(ctx.dataDir, FAULTY_CHECKS), `${job.params.deploymentId}\n`);
        if (faultyChecks(ctx.dataDir, job.params.deploymentId) <= job.params.failTimes) {
          throw new TypeError(`Cannot read properties of undefined (reading 'owner')${job.params.leak ? ` for token ${job.params.token}` : ""}`);
        }
      },
      toWorkload() {
        return { command: ["true"], env: {} };
      },
    }),
  ],
});
