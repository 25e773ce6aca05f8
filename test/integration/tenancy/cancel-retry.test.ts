/**
 * Issue 13 — cancel and retry recorded `by: "api"` whoever called; cancelling a job that
 * already ended answered 200 with the job unchanged.
 *
 * Now `by` is the API key's name, and cancelling an ended job is 409 JOB_FINAL naming its state.
 *
 * FAILS ON MAIN: `expected by "operator", received "api"` (cancel and retry alike), and the
 * cancel of a succeeded job answered `200` instead of `409`.
 */
import { randomUUID } from "node:crypto";
import { useControlledTarget, waitForEntry, waitState, writeControl } from "../../support/controlled";
import { startNode, TEST_KEYS, TestNode } from "../../support/orchestrator";

let node: TestNode;
const operator = { authorization: `Bearer ${TEST_KEYS.operator}` };

beforeAll(async () => {
  node = await startNode({ configure: useControlledTarget });
});
afterAll(async () => {
  await node?.stop();
});

test("cancel and retry record the key's name in `by`", async () => {
  const id = `by-${randomUUID().slice(0, 8)}`;
  expect((await node.http("POST", "/api/jobs", { type: "ctl", deploymentId: id }, operator)).status).toBe(202);
  const jobId = (await node.rt.store.listJobs({ deploymentId: id })).items[0].id;
  await waitState(node, jobId, ["running", "launching"]);
  const cancel = await node.http("POST", `/api/jobs/${jobId}/cancel`, { reason: "by whom?" }, operator);
  expect(cancel.status).toBe(200);
  const retry = await node.http("POST", `/api/jobs/${jobId}/retry`, {}, operator);
  expect(retry.status).toBe(200);
  const history = (await node.http("GET", `/api/jobs/${jobId}`)).body.history;
  expect(history.find((e: any) => e.to === "cancelled").data).toMatchObject({ reason: "by whom?", by: "operator" });
  expect(history.find((e: any) => e.kind === "job.retried").data).toMatchObject({ by: "operator", previousState: "cancelled" });
});

test("cancelling a job that already ended is 409 JOB_FINAL, naming its state; the job is unchanged", async () => {
  const id = `final-${randomUUID().slice(0, 8)}`;
  const res = await node.http("POST", "/api/jobs", { type: "ctl", deploymentId: id, runMs: 0 });
  const jobId = res.body.job.id;
  await waitForEntry(node.dataDir, (e) => e.op === "launched" && e.key === `${jobId}:1`);
  writeControl(node.dataDir, { keys: { [`${jobId}:1`]: { exitNow: 0 } } });
  const done = await waitState(node, jobId, ["succeeded"]);
  const cancel = await node.http("POST", `/api/jobs/${jobId}/cancel`, { reason: "too late" }, operator);
  expect(cancel.status).toBe(409);
  expect(cancel.body.error).toMatchObject({ type: "JOB_FINAL", message: expect.stringMatching(/succeeded/) });
  const after = (await node.http("GET", `/api/jobs/${jobId}`)).body;
  expect(after.job.state).toBe("succeeded");
  expect(after.job.version).toBe(done.job.version);
});
