/**
 * Finding 1 — a stale decision ends the wrong attempt.
 *
 * The reconciler reads "attempt 1 exited 0" from its target, but the answer is slow to
 * arrive (inspectDelayMs on key <job>:1). Meanwhile an operator cancels the job, retries
 * it, and attempt 2 starts running. The stale answer must not end the job: it is about
 * attempt 1, which is long over.
 *
 * FAILS ON MAIN: lifecycle.reconcileOne applies the stale "exited 0" with
 * endAttempt(from: [snapshot state "running"]); the job is `running` again (attempt 2),
 * so the compare-and-set succeeds: the job becomes `succeeded`, attempt 2 is marked
 * exited/SUCCEEDED while its worker keeps running, and the `job.succeeded` event carries
 * the tick's start time, earlier than the cancel/retry/launch events before it
 * (history[].at goes backwards). Assertion: `expected "running", received "succeeded"`.
 *
 * Interleaving: the test waits for the journal line "inspect began for <job>:1 with the
 * 4 s delay" before cancelling, plays attempt 2's worker (`POST /api/worker/started` with
 * the token its launch carried), and checks that all of this happened while the stale
 * inspect was still in flight before it lets the answer count.
 */
import { restJobId } from "../../../lib/jobs/model";
import { startNode, TestNode } from "../../support/orchestrator";
import {
  entriesFor,
  getJob,
  historyTimes,
  readJournal,
  reportAsWorker,
  submit,
  useControlledTarget,
  waitForEntry,
  waitState,
  workersStillRunning,
  writeControl,
} from "../../support/controlled";
import { waitFor } from "../../support/wait";

const STALE_DELAY_MS = 4000;

let node: TestNode;

beforeAll(async () => {
  node = await startNode({ configure: useControlledTarget });
});
afterAll(() => node?.stop());

test("a slow 'attempt 1 exited 0' that arrives after cancel + retry does not end attempt 2", async () => {
  const given = `stale-${Date.now()}`;
  const id = restJobId("admin", given); // REST job keys live in the caller's namespace
  const key1 = `${id}:1`;
  const key2 = `${id}:2`;
  await submit(node, { type: "ctl", jobId: given, deploymentId: "stale" }); // runs until stopped
  await waitState(node, id, ["running"]);

  // Attempt 1 exits 0 now, and the next inspect that sees it answers 4 s late.
  writeControl(node.dataDir, { keys: { [key1]: { exitNow: 0, inspectDelayMs: STALE_DELAY_MS } } });
  const staleCall = await waitForEntry(node.dataDir, (e) => e.op === "inspect" && e.key === key1 && e.delayMs === STALE_DELAY_MS, {
    message: `no delayed inspect of ${key1} began`,
  });
  // Only that one answer is slow: later looks at attempt 1 (if the engine takes any) answer at once.
  writeControl(node.dataDir, {});

  const cancelled = await node.http("POST", `/api/jobs/${id}/cancel`, { reason: "operator" });
  expect(cancelled.status).toBe(200);
  expect(cancelled.body.job.state).toBe("cancelled");
  const retried = await node.http("POST", `/api/jobs/${id}/retry`);
  expect(retried.status).toBe(200);

  await waitForEntry(node.dataDir, (e) => e.op === "launched" && e.key === key2, { timeout: 3000, message: `attempt 2 (${key2}) was never launched` });
  await waitFor(async () => (await getJob(node, id)).attempts[1]?.handle, { timeout: 2000, message: "attempt 2's handle was never recorded" });
  expect(await reportAsWorker(node.dataDir, key2, "started")).toBe(200);
  const before = await waitState(node, id, ["running"], { timeout: 2000 });
  expect(before.job.attempt).toBe(2);

  // Precondition of the race: all of the above happened while the stale answer was still on its way.
  expect(readJournal(node.dataDir).some((e) => e.op === "inspected" && e.call === staleCall.call)).toBe(false);

  const staleAnswer = await waitForEntry(node.dataDir, (e) => e.op === "inspected" && e.call === staleCall.call, { timeout: STALE_DELAY_MS + 2000 });
  expect(staleAnswer).toMatchObject({ state: "exited", exitCode: 0 });

  // Let the engine act on it: wait until the job leaves `running`, or the engine inspects attempt 2 after the stale answer (it moved on).
  const after = await waitFor(
    async () => {
      const view = await getJob(node, id);
      if (view.job.state !== "running") return view;
      return readJournal(node.dataDir).some((e) => e.op === "inspect" && e.key === key2 && e.at > staleAnswer.at) ? view : null;
    },
    { timeout: 5000, message: "the engine neither ended the job nor inspected attempt 2 after the stale answer" },
  );

  expect(after.job.state).toBe("running");
  expect(after.job.attempt).toBe(2);
  expect(after.attempts[1]).toMatchObject({ attempt: 2, state: "running", endedAt: null });
  const journal = readJournal(node.dataDir);
  expect(entriesFor(journal, key2, "stop")).toEqual([]);
  expect(workersStillRunning(journal)).toContain(key2);
  const times = historyTimes(after);
  expect(times).toEqual([...times].sort((a, b) => a - b));

  await node.http("POST", `/api/jobs/${id}/cancel`);
}, 30_000);
