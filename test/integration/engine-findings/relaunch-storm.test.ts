/**
 * Finding 3 — a slow launch is launched again and again while it is still in flight.
 *
 * RELAUNCH_AFTER_MS is meant for an attempt whose launcher died (no handle long after the
 * claim). A launch that is merely slow must not be repeated while this node still waits
 * for it.
 *
 * FAILS ON MAIN: lifecycle.reconcileActive calls dispatcher.relaunch on every tick
 * (RECONCILE_INTERVAL_MS = 100) for any attempt without a handle older than
 * RELAUNCH_AFTER_MS = 200, so the target receives ~30 `launch` calls for the one key
 * during the 3 s launch. Assertion: `expected 1, received ~29`.
 */
import { startNode, TestNode } from "../../support/orchestrator";
import { entriesFor, readJournal, submit, useControlledTarget, waitForEntry, writeControl } from "../../support/controlled";
import { restJobId } from "../../../lib/jobs/model";

const LAUNCH_DELAY_MS = 3000;

let node: TestNode;

beforeAll(async () => {
  node = await startNode({ env: { RELAUNCH_AFTER_MS: "200", RECONCILE_INTERVAL_MS: "100" }, configure: useControlledTarget });
});
afterAll(() => node?.stop());

test("a launch in flight for 3 s is called once, not again every tick after RELAUNCH_AFTER_MS", async () => {
  const given = `storm-${Date.now()}`;
  const id = restJobId("admin", given); // REST job keys live in the caller's namespace
  const key = `${id}:1`;
  writeControl(node.dataDir, { keys: { [key]: { launchDelayMs: LAUNCH_DELAY_MS } } });
  await submit(node, { type: "ctl", jobId: given, deploymentId: "storm" });
  const launched = await waitForEntry(node.dataDir, (e) => e.op === "launched" && e.key === key, { timeout: LAUNCH_DELAY_MS + 3000 });
  const launchesInFlight = entriesFor(readJournal(node.dataDir), key, "launch").filter((e) => e.at <= launched.at);
  expect(launchesInFlight.length).toBe(1);
  await node.http("POST", `/api/jobs/${id}/cancel`);
}, 20_000);
