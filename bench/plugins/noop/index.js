"use strict";
/**
 * The bench's launch targets and task types, plain CommonJS so the compiled node loads it
 * (a `.ts` plugin cannot be required by `node dist/bin/blacktree.js`). Written like
 * test/support/plugins/instant: nothing runs, so the figures are the orchestrator's own cost.
 *
 * - target `bench-noop`: every worker has exited 0 as soon as it is launched. When the
 *   host offers `ctx.pushStatus` (the engine rewrite's push API) the exit is pushed on
 *   setImmediate after the launch; without it the lifecycle finds it on its next inspect.
 * - target `bench-forever`: workers never end (holds a concurrency slot for the scale section).
 * - task types `bench-noop` (→ bench-noop), `bench-held` (→ bench-forever) and
 *   `bench-emulated` (→ fargate on the AWS emulator, which plays the worker from its env).
 */
// The backend's DeploymentMessage fields, declared (unknown fields are refused): the bench
// sends the backend's own message shape, so intake validates what it would in production.
const optionalString = { type: "string", optional: true };
const params = {
  deploymentId: { type: "string" },
  token: optionalString,
  repository: optionalString,
  branch: optionalString,
  dockerFilePath: optionalString,
  composeFilePath: { type: "string", optional: true, empty: true },
  contextDir: optionalString,
  portNumber: optionalString,
  autoDeploy: { type: "boolean", optional: true },
};

function taskType(name, target, workload) {
  return { name, params, secretFields: ["token"], defaults: { target }, toWorkload: workload || (() => ({ command: ["true"], env: {} })) };
}

const exitedAt0 = (key) => ({ key, state: "exited", exitCode: 0 });

module.exports.default = {
  name: "bench-noop",
  apiVersion: "^1.0.0",
  taskTypes: [
    taskType("bench-noop", "bench-noop"),
    taskType("bench-held", "bench-forever"),
    {
      ...taskType("bench-emulated", "fargate"),
      params: { ...params, runMs: { type: "number", integer: true, min: 0, default: 600000 } },
      toWorkload: (job) => ({ image: "registry.local/worker:1", command: ["worker"], env: { BLACKTREE_TEST_EXIT: "0", BLACKTREE_TEST_RUN_MS: String(job.params.runMs) } }),
    },
  ],
  targets: [
    () => ({
      name: "bench-noop",
      configSchema: {},
      async launch(req, ctx) {
        if (ctx && typeof ctx.pushStatus === "function") {
          setImmediate(() => {
            Promise.resolve()
              .then(() => ctx.pushStatus(exitedAt0(req.key)))
              .catch((err) => ctx.logger.warn(`⚠️ bench-noop could not push the exit of ${req.key}: ${err && err.message}`));
          });
        }
        return { key: req.key };
      },
      async inspect(handles) {
        return handles.map((h) => exitedAt0(h.key));
      },
      async stop() {},
    }),
    () => ({
      name: "bench-forever",
      configSchema: {},
      async launch(req) {
        return { key: req.key };
      },
      async inspect(handles) {
        return handles.map((h) => ({ key: h.key, state: "running" }));
      },
      async stop() {},
    }),
  ],
};
