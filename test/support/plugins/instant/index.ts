import fs from "node:fs";
import path from "node:path";
import { definePlugin, defineTarget, defineTaskType } from "../../../../lib/sdk";

/** The file, under the node's data dir, where every launch appends its key (one line each). */
export const LAUNCH_LOG = "instant-launches.log";

/**
 * A test launch target written as a third party would: every worker "exits 0" at once.
 * It lets a test push a thousand jobs through the whole pipeline without a thousand
 * child processes, and its launch log shows whether any key was launched twice.
 */
export default definePlugin({
  name: "test-instant",
  apiVersion: "^1.0.0",
  taskTypes: [
    // Validation that takes a while: keeps messages in flight long enough to watch a drain.
    defineTaskType<{ deploymentId: string; checkDelayMs: number }>({
      name: "sleepy",
      params: { deploymentId: { type: "string" }, checkDelayMs: { type: "number", integer: true, min: 0, max: 10_000 } },
      defaults: { target: "instant" },
      async check(job) {
        await new Promise((resolve) => setTimeout(resolve, job.params.checkDelayMs));
      },
      toWorkload() {
        return { command: ["true"], env: {} };
      },
    }),
  ],
  targets: [
    defineTarget(() => ({
      name: "instant",
      configSchema: {},
      async launch(req, ctx) {
        fs.appendFileSync(path.join(ctx.dataDir, LAUNCH_LOG), `${req.key}\n`);
        return { key: req.key };
      },
      async inspect(handles) {
        return handles.map((h) => ({ key: h.key, state: "exited" as const, exitCode: 0 }));
      },
      async stop() {},
      async *logs(handle) {
        yield `instant worker ${handle.key}: done`;
      },
    })),
    // The same, but the exit is pushed just after the launch returns (a target that knows at once).
    defineTarget(() => ({
      name: "instant-push",
      configSchema: {},
      async launch(req, ctx) {
        fs.appendFileSync(path.join(ctx.dataDir, LAUNCH_LOG), `${req.key}\n`);
        setImmediate(() => ctx.pushStatus?.({ key: req.key, state: "exited", exitCode: 0 }));
        return { key: req.key };
      },
      async inspect(handles) {
        return handles.map((h) => ({ key: h.key, state: "exited" as const, exitCode: 0 }));
      },
      async stop() {},
    })),
  ],
});
