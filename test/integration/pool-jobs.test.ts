import fs from "node:fs";
import path from "node:path";
import { brokerCluster } from "../../lib/cluster";
import { startNode, tempDir, TestNode } from "../support/orchestrator";
import { startWorkers, stopWorkers, TRANSPORTER, uniqueNamespace, waitForWorkers, WorkerNode } from "../support/pool";
import { killHard } from "../support/entry-point";
import { waitFor } from "../support/wait";

/** Jobs through a whole orchestrator node onto two real worker node processes. */
const namespace = uniqueNamespace("pool-jobs");
const gate = path.join(tempDir("blacktree-pool-gate-"), "open");
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];
let node: TestNode;
let workers: WorkerNode[];

beforeAll(async () => {
  workers = startWorkers(namespace, [`${namespace}-w1`, `${namespace}-w2`]);
  node = await startNode({
    env: { TRANSPORTER, NAMESPACE: namespace, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "error" },
    configure: (config) => {
      config.plugins.push({ use: path.join(__dirname, "../support/plugins/script-plugin.ts") }, { use: "./plugins/targets/pool", config: {} });
      config.routing.byType.script = "pool";
    },
  });
  await waitForWorkers(brokerCluster(node.broker), workers.map((w) => w.nodeID));
}, 120_000);

afterAll(async () => {
  fs.writeFileSync(gate, ""); // lets the first attempt's process (which outlives its killed node) end
  await node?.stop();
  await stopWorkers(workers ?? []);
});

test("killing one pool worker node mid-job (SIGKILL): the job is retried on the other and succeeds", async () => {
  // The first attempt waits at the gate (until after the test); the retry finishes at once.
  const script = `(async () => {
    if (process.env.BLACKTREE_ATTEMPT === "1") while (!require("fs").existsSync(${JSON.stringify(gate)})) await sleep(50);
    console.log("attempt " + process.env.BLACKTREE_ATTEMPT + " done");
  })()`;
  const res = await node.http("POST", "/api/jobs", { type: "script", script, retry: { maxAttempts: 2, initialDelay: 100, retryOn: ["WORKER_LOST"] } });
  expect(res.status).toBe(202);
  const id = res.body.job.id;
  const running = await waitFor(async () => {
    const r = await node.http("GET", `/api/jobs/${id}`);
    return r.body.job.state === "running" ? r.body : null;
  }, { timeout: 30_000, message: "the job runs on a worker node" });
  const first = running.attempts[0].handle.nodeID as string;
  const victim = workers.find((w) => w.nodeID === first)!;
  expect(victim).toBeDefined();

  await killHard(victim.process);
  // Moleculer notices the node is gone after its heartbeat timeout (15 s).
  const done = await waitFor(async () => {
    const r = await node.http("GET", `/api/jobs/${id}`);
    return FINAL.includes(r.body.job.state) ? r.body : null;
  }, { timeout: 90_000, interval: 200, message: "the job ended after its worker node died" });

  expect(done.job.state).toBe("succeeded");
  expect(done.attempts).toHaveLength(2);
  expect(done.attempts[0]).toMatchObject({ outcome: "WORKER_LOST", reason: expect.stringContaining(first) });
  expect(done.attempts[1].handle.nodeID).not.toBe(first);
  expect(done.attempts[1]).toMatchObject({ outcome: "SUCCEEDED", exitCode: 0 });
  const logs = await node.http("GET", `/api/jobs/${id}/logs`);
  expect(logs.body.attempts[1].lines).toContain("attempt 2 done");

  // The node rejoins under its old id (a fresh machine): it knows nothing of the first attempt, which stays lost.
  const [rejoined] = startWorkers(namespace, [first]);
  workers.push(rejoined);
  await waitForWorkers(brokerCluster(node.broker), [first]);
  const [status] = await node.broker.call("targets.pool.inspect", { handles: [done.attempts[0].handle] }) as Array<{ state: string }>;
  expect(status).toMatchObject({ key: done.attempts[0].key, state: "lost" });
  const after = await node.http("GET", `/api/jobs/${id}`);
  expect(after.body.job.state).toBe("succeeded");
  expect(after.body.attempts).toHaveLength(2);
}, 150_000);
