/**
 * Test plugin, written as a third party would: `script` jobs run a Node script with the
 * worker's callback env (so it can report started/heartbeat/result), and the `stuck`
 * target accepts launches whose workers never leave `pending` (a task stuck provisioning).
 */
import { definePlugin, defineTarget, defineTaskType, TargetHandle } from "../../../lib/sdk";

/** Helpers a script may use: `report(path, body)` posts to its callback with its token. */
const PRELUDE = `const report = (p, body = {}) => fetch(process.env.BLACKTREE_CALLBACK_URL + "/" + p, { method: "POST", headers: { authorization: "Bearer " + process.env.BLACKTREE_CALLBACK_TOKEN, "content-type": "application/json" }, body: JSON.stringify(body) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));\n`;

const scriptType = (name: string) =>
  defineTaskType<{ deploymentId: string; script: string }>({
    name,
    params: { deploymentId: { type: "string", default: "none" }, script: { type: "string", max: 10_000 } },
    toWorkload: (job) => ({ command: [process.execPath, "-e", PRELUDE + job.params.script], env: {} }),
  });

const stuckTarget = defineTarget(() => {
  const launched = new Set<string>();
  return {
    name: "stuck",
    configSchema: {},
    async launch(req) {
      launched.add(req.key);
      return { key: req.key };
    },
    async inspect(handles: TargetHandle[]) {
      return handles.map((h) => (launched.has(h.key) ? { key: h.key, state: "pending" as const } : { key: h.key, state: "lost" as const, reason: "unknown" }));
    },
    async stop(handle: TargetHandle) {
      launched.delete(handle.key);
    },
  };
});

export default definePlugin({
  name: "test-scripts",
  apiVersion: "^1.0.0",
  taskTypes: [scriptType("script"), scriptType("script-a"), scriptType("script-b"), scriptType("script-c")],
  targets: [stuckTarget],
});
