/**
 * Finding 8 — effects of a decision that are not durable, or that hold up the caller.
 *
 * (a) FAILS ON MAIN: lifecycle.onFinal calls the task type's followUps() once, right
 *     after the job succeeded, outside its try/catch: the throw escapes to reconcileOne's
 *     catch, is logged ("reconcile of job … failed"), and nothing ever asks again. After
 *     `failFollowUps` is cleared the follow-up never appears: the waitFor
 *     "the follow-up job never appeared" times out.
 * (b) FAILS ON MAIN: intake.submit awaits lifecycle.cancelMatching → cancelJob →
 *     stopAttempt for every live job of the deployment before it answers, so with an 8 s
 *     target `stop` the POST of the stop job answers 202 only after ~8 s. The test gives
 *     up after 2 s: assertion `expected {status: 202, note: ""}, received {status: 0,
 *     note: "no answer within 2000 ms (TimeoutError)"}`.
 */
import { authHeader, startNode, TestNode } from "../../support/orchestrator";
import { submit, useControlledTarget, waitForEntry, waitState, writeControl } from "../../support/controlled";
import { restJobId } from "../../../lib/jobs/model";
import { waitFor } from "../../support/wait";

const ANSWER_WITHIN_MS = 2000;

let node: TestNode;

beforeAll(async () => {
  node = await startNode({
    configure: (c) => {
      useControlledTarget(c);
      c.routing.byType.deploy = "controlled";
      c.routing.byType.stop = "controlled";
    },
  });
});
afterAll(() => node?.stop());

test("a follow-up that could not be created when its parent succeeded is created once the cause is gone", async () => {
  const deploymentId = `fu-${Date.now()}`;
  const id = restJobId("admin", `${deploymentId}-parent`); // REST job keys live in the caller's namespace
  writeControl(node.dataDir, { failFollowUps: true });
  await submit(node, { type: "ctl", jobId: `${deploymentId}-parent`, deploymentId, runMs: 0, followUp: true });
  expect((await waitState(node, id, ["succeeded", "failed", "timed_out", "cancelled"])).job.state).toBe("succeeded");
  // The engine did ask for the follow-ups, and the task type failed them.
  await waitForEntry(node.dataDir, (e) => e.op === "followups" && e.key === id && e.failed === true, { message: "followUps() was never called for the parent" });

  writeControl(node.dataDir, { failFollowUps: false });
  const children = await waitFor(
    async () => {
      const res = await node.http("GET", `/api/jobs?deploymentId=${encodeURIComponent(`${deploymentId}-fu`)}`);
      return res.status === 200 && res.body.items.length > 0 ? res.body.items : null;
    },
    { timeout: 10_000, message: "the follow-up job never appeared after failFollowUps was cleared" },
  );
  expect(children).toHaveLength(1);
  expect(children[0]).toMatchObject({ type: "ctl", parentId: id, deploymentId: `${deploymentId}-fu` });
}, 30_000);

test("POST of a stop job answers 202 at once, even when stopping the running deploy takes 8 s", async () => {
  const deploymentId = `slowstop-${Date.now()}`;
  const deployId = restJobId("admin", `${deploymentId}-deploy`);
  await submit(node, { type: "deploy", jobId: `${deploymentId}-deploy`, deploymentId, imageUrl: "registry.example.test/app:1" });
  await waitState(node, deployId, ["running"]);
  writeControl(node.dataDir, { keys: { [`${deployId}:1`]: { stopDelayMs: 8000 } } });

  // Given up after 2 s, so that on a node that waits for the stop the test fails in 2 s, not 8.
  const started = Date.now();
  const answer = await fetch(`${node.url}/api/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json", ...authHeader() },
    body: JSON.stringify({ type: "stop", deploymentId }),
    signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
  }).then(
    async (res) => ({ status: res.status, body: await res.text() }),
    (err: Error) => ({ status: 0, body: `no answer within ${ANSWER_WITHIN_MS} ms (${err.name})` }),
  );
  const tookMs = Date.now() - started;
  expect({ status: answer.status, note: answer.status === 202 ? "" : answer.body }).toEqual({ status: 202, note: "" });
  expect(tookMs).toBeLessThan(ANSWER_WITHIN_MS);
  // The stop was still asked for.
  await waitForEntry(node.dataDir, (e) => e.op === "stop" && e.key === `${deployId}:1`, { timeout: 3000 });
}, 30_000);
