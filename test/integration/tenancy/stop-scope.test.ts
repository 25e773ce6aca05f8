/**
 * Issue 13 — a submitter's `stop` (and coalescing) cancelled another submitter's jobs of the
 * same deploymentId: the cancel route said 403, the `stop` said 202.
 *
 * Every cancellation a job causes is scoped to what its submitter may cancel: a submitter's
 * `stop` or superseding job reaches only that submitter's jobs; an operator's `stop` keeps
 * today's reach (every live job of the deployment).
 *
 * FAILS ON MAIN: alice's stop cancelled bob's running job (`expected "running", received
 * "cancelled"`), and bob's superseding job cancelled alice's queued one.
 */
import { randomUUID } from "node:crypto";
import { useControlledTarget, waitState } from "../../support/controlled";
import { startNode, TEST_KEYS, TestNode } from "../../support/orchestrator";

let node: TestNode;
const as = (role: keyof typeof TEST_KEYS) => ({ authorization: `Bearer ${TEST_KEYS[role]}` });

beforeAll(async () => {
  node = await startNode({
    configure: (c) => {
      useControlledTarget(c);
      c.routing.byType.stop = "controlled"; // the stop job itself runs nothing real
      c.taskTypes.ctl = { coalesce: true };
    },
  });
});
afterAll(async () => {
  await node?.stop();
});

async function post(role: keyof typeof TEST_KEYS, body: Record<string, unknown>): Promise<string> {
  const res = await node.http("POST", "/api/jobs", body, as(role));
  expect(res.status).toBe(202);
  return res.body.job.id;
}
const stateOf = async (id: string) => (await node.rt.store.getJob(id))!.state;

test("a submitter's stop cancels only its own jobs of the deployment; the cancel route stays 403 for it", async () => {
  const dep = `scope-${randomUUID().slice(0, 8)}`;
  // ctl jobs of one deployment share a concurrency key: alice's runs, bob's waits behind it.
  const alices = await post("submitter", { type: "ctl", deploymentId: dep });
  await waitState(node, alices, ["running", "launching"]);
  const bobs = await post("submitter2", { type: "ctl", deploymentId: dep });
  expect((await node.http("POST", `/api/jobs/${bobs}/cancel`, {}, as("submitter"))).status).toBe(403);

  await post("submitter", { type: "stop", deploymentId: dep });
  // The stop walks the deployment newest first: bob's job was looked at before alice's.
  const cancelled = await waitState(node, alices, ["cancelled"]);
  expect(cancelled.job.error.message).toMatch(/stopped by stop job/);
  expect(await stateOf(bobs)).not.toBe("cancelled"); // still waiting, or launched now that alice's slot is free
  await node.http("POST", `/api/jobs/${bobs}/cancel`, {}, as("operator"));
});

test("an operator's stop keeps today's reach: every live job of the deployment", async () => {
  const dep = `reach-${randomUUID().slice(0, 8)}`;
  const alices = await post("submitter", { type: "ctl", deploymentId: dep });
  await waitState(node, alices, ["running", "launching"]);
  const bobs = await post("submitter2", { type: "ctl", deploymentId: dep });
  await post("operator", { type: "stop", deploymentId: dep });
  await waitState(node, alices, ["cancelled"]);
  await waitState(node, bobs, ["cancelled"]);
});

test("a submitter's newer job supersedes only its own queued jobs (coalesce)", async () => {
  const dep = `coalesce-${randomUUID().slice(0, 8)}`;
  const running = await post("submitter", { type: "ctl", deploymentId: dep });
  await waitState(node, running, ["running", "launching"]);
  const alicesQueued = await post("submitter", { type: "ctl", deploymentId: dep });
  const bobsQueued = await post("submitter2", { type: "ctl", deploymentId: dep });
  const alicesNewest = await post("submitter", { type: "ctl", deploymentId: dep });
  const superseded = await waitState(node, alicesQueued, ["cancelled"]);
  expect(superseded.job.error.message).toBe(`superseded by job ${alicesNewest}`);
  expect(await stateOf(bobsQueued)).toBe("queued");
  expect(await stateOf(running)).not.toBe("cancelled");
  for (const id of [running, bobsQueued, alicesNewest]) await node.http("POST", `/api/jobs/${id}/cancel`, {}, as("operator"));
});
