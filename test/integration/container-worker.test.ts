import path from "node:path";
import { containersWithLabel, ensureTestImage, removeContainersWithLabel } from "../support/docker";
import { nodeWorkerImage } from "../support/node-image";
import { ROOT, startNode, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/**
 * A worker written against the SDK's worker client, in a container on the real dockerd,
 * reports to the real gateway: started, log lines, its secret once, a result — and the job
 * shows them. The engine here runs no bridge (`--bridge=none`), so the container shares the
 * host's network namespace (docker target `network: "host"`) to reach the gateway on
 * 127.0.0.1; `none`, the target's default, would leave it only its exit code.
 */
const WORKER = `const fs = require("node:fs");
const { WorkerClient } = require("@blacktree/sdk/worker");
(async () => {
  // echo off: nothing reaches stdout, so the job's log is exactly what the worker pushed.
  const worker = WorkerClient.fromEnv({ echo: false, logFlushMs: 20 });
  const started = await worker.started();
  worker.log("🔄 reporting from a container, as pid " + process.pid);
  const { apiToken } = await worker.secrets();
  worker.log("✅ fetched the token: " + apiToken);
  const recorded = await worker.result({ success: true, message: "reported from a container", started, pid: process.pid, dockerenv: fs.existsSync("/.dockerenv") });
  await worker.close();
  process.exit(recorded ? 0 : 4);
})();
`;
const labelPrefix = `btcw${process.pid}`;
let node: TestNode;
let image: string;

beforeAll(async () => {
  ensureTestImage();
  image = nodeWorkerImage(WORKER);
  node = await startNode({
    configure: (c) => {
      c.plugins.push(
        { use: path.join(ROOT, "test/support/plugins/container-worker-plugin.ts") },
        { use: "./plugins/targets/docker", config: { network: "host", stopGraceMs: 2_000, labelPrefix } },
      );
      c.routing.byType["container-worker"] = "docker";
    },
  });
}, 180_000);

afterAll(async () => {
  await node?.stop();
  removeContainersWithLabel(`${labelPrefix}.key`);
});

test("a worker on the SDK's client in a container reports started, its log and a result that the job shows", async () => {
  const res = await node.http("POST", "/api/jobs", { type: "container-worker", deploymentId: "boxed", image, apiToken: "tok-container-0123456789" });
  expect(res.status).toBe(202);
  const id = res.body.job.id;
  const done = await waitFor(
    async () => {
      const r = await node.http("GET", `/api/jobs/${id}`);
      return ["succeeded", "failed", "timed_out", "cancelled"].includes(r.body.job.state) ? r.body : null;
    },
    { timeout: 60_000, message: `job ${id} ended` },
  );
  expect(done.job).toMatchObject({ state: "succeeded", target: "docker" });
  // Reported from inside the container (pid 1, docker's marker file), started recorded by the gateway.
  expect(done.job.result).toMatchObject({ success: true, message: "reported from a container", started: true, pid: 1, dockerenv: true });
  expect(done.attempts[0]).toMatchObject({ target: "docker", exitCode: 0, outcome: "SUCCEEDED" });
  expect(done.attempts[0].handle.name).toMatch(new RegExp(`^${labelPrefix}-`));
  expect(containersWithLabel(`${labelPrefix}.job=${id}`)).toHaveLength(1);
  expect(done.history).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "job.running" }), expect.objectContaining({ kind: "attempt.secrets_fetched", data: expect.objectContaining({ names: ["apiToken"] }) })]));
  const logs = (await node.http("GET", `/api/jobs/${id}/logs`)).body.attempts[0].lines;
  expect(logs).toEqual(["🔄 reporting from a container, as pid 1", "✅ fetched the token: ***"]);
}, 120_000);
