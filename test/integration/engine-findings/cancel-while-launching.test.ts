/**
 * Finding 2 — a cancel while the launch is in flight leaves the worker running.
 *
 * FAILS ON MAIN:
 * - "the target gets stop…": lifecycle.cancelJob marks the attempt `stopped` and calls
 *   stopAttempt, which returns at once because the attempt has no handle yet; when the
 *   launch returns, dispatcher.launch's updateAttempt(onlyIfState: ["launching"]) finds the
 *   attempt `stopped` and drops the handle. Nobody stops the worker (only the reaper
 *   would, every REAP_INTERVAL_MS = 30 s, left at its default here): the waitFor for a
 *   `stop` journal line after `launched` times out ("…was never stopped…").
 * - "a stop job…": the stop job cancels the launching deploy, whose attempt then no longer
 *   counts against the deployment's concurrency key, so the stop job is claimed and its
 *   own `launch` begins while the deploy's launch is still in flight; the deploy's worker
 *   is never stopped. Assertion: the deploy's `stopped` line is missing before the stop
 *   job's `launch` (received undefined / -1).
 */
import { startNode, TestNode } from "../../support/orchestrator";
import { readJournal, submit, useControlledTarget, waitForEntry, waitState, workersStillRunning, writeControl } from "../../support/controlled";
import { restJobId } from "../../../lib/jobs/model";

const LAUNCH_DELAY_MS = 2000;
/** How soon after the launch returns the target must hear `stop`. */
const STOP_WITHIN_MS = 1500;

let node: TestNode;

beforeAll(async () => {
  node = await startNode({
    // REAP_INTERVAL_MS stays at its default (30 s): the reaper cannot be what stops the worker.
    configure: (c) => {
      useControlledTarget(c);
      c.routing.byType.deploy = "controlled";
      c.routing.byType.stop = "controlled";
    },
  });
});
afterAll(() => node?.stop());

test("cancelled while its launch is in flight: when the launch returns, the target is told to stop that worker", async () => {
  const given = `cwl-${Date.now()}`;
  const id = restJobId("admin", given); // REST job keys live in the caller's namespace
  const key = `${id}:1`;
  writeControl(node.dataDir, { keys: { [key]: { launchDelayMs: LAUNCH_DELAY_MS } } });
  await submit(node, { type: "ctl", jobId: given, deploymentId: "cwl" }); // runs until stopped
  await waitForEntry(node.dataDir, (e) => e.op === "launch" && e.key === key, { message: "the launch never began" });

  const cancelled = await node.http("POST", `/api/jobs/${id}/cancel`, { reason: "changed my mind" });
  expect(cancelled.status).toBe(200);
  expect(cancelled.body.job.state).toBe("cancelled");
  expect(readJournal(node.dataDir).some((e) => e.op === "launched" && e.key === key)).toBe(false); // still in flight when cancelled

  const launched = await waitForEntry(node.dataDir, (e) => e.op === "launched" && e.key === key, { timeout: LAUNCH_DELAY_MS + 3000 });
  const stop = await waitForEntry(node.dataDir, (e) => e.op === "stop" && e.key === key && e.at >= launched.at, {
    timeout: Math.max(0, launched.at + STOP_WITHIN_MS - Date.now()) + 100,
    message: `worker ${key} was never stopped within ${STOP_WITHIN_MS} ms of its launch returning (cancelled while launching)`,
  });
  expect(stop.at - launched.at).toBeLessThanOrEqual(STOP_WITHIN_MS);
  await waitForEntry(node.dataDir, (e) => e.op === "stopped" && e.key === key, { timeout: 2000 });
  expect(workersStillRunning(readJournal(node.dataDir))).not.toContain(key);
  expect((await waitState(node, id, ["cancelled"])).job.state).toBe("cancelled");
}, 20_000);

test("a stop job submitted while its deployment's deploy launches does not launch before the deploy's worker is stopped", async () => {
  const deploymentId = `swl-${Date.now()}`;
  const deployId = restJobId("admin", `${deploymentId}-deploy`);
  const stopId = restJobId("admin", `${deploymentId}-stop`);
  const deployKey = `${deployId}:1`;
  const stopKey = `${stopId}:1`;
  writeControl(node.dataDir, { keys: { [deployKey]: { launchDelayMs: LAUNCH_DELAY_MS } } });
  await submit(node, { type: "deploy", jobId: `${deploymentId}-deploy`, deploymentId, imageUrl: "registry.example.test/app:1" });
  await waitForEntry(node.dataDir, (e) => e.op === "launch" && e.key === deployKey, { message: "the deploy's launch never began" });

  await submit(node, { type: "stop", jobId: `${deploymentId}-stop`, deploymentId });
  await waitForEntry(node.dataDir, (e) => e.op === "launch" && e.key === stopKey, { timeout: LAUNCH_DELAY_MS + 8000, message: "the stop job never launched" });

  const journal = readJournal(node.dataDir);
  const order = journal.filter((e) => e.key === deployKey || e.key === stopKey).map((e) => `${e.op} ${e.key}`);
  const deployStopped = journal.findIndex((e) => e.op === "stopped" && e.key === deployKey);
  const stopLaunch = journal.findIndex((e) => e.op === "launch" && e.key === stopKey);
  expect({ deployStoppedBeforeStopJobLaunch: deployStopped !== -1 && deployStopped < stopLaunch, order }).toEqual({
    deployStoppedBeforeStopJobLaunch: true,
    order,
  });
  expect(workersStillRunning(journal)).not.toContain(deployKey);
  expect((await waitState(node, deployId, ["cancelled"])).job.state).toBe("cancelled");
  await node.http("POST", `/api/jobs/${stopId}/cancel`);
}, 30_000);
