/**
 * Finding 4 — one slow target call stalls the whole clock.
 *
 * A job whose timeout fired is stopped on a target whose `stop` takes 8 s (or a finishing
 * attempt's `logs` takes 8 s); meanwhile another job, queued behind a concurrency key, has
 * a queueTimeout of 500 ms. Its timeout must fire on time, not when the slow call returns.
 *
 * FAILS ON MAIN: lifecycle.tick runs reconcileActive → reconcileOne, which awaits
 * stopAttempt (8 s, "slow stop") or finishAttempt → collectLog (8 s, "slow logs") inside
 * the tick; `ticking` makes every later tick return at once, so expireWaiting does not
 * run until the slow call returns: B times out ~8 s after its deadline. The waitFor
 * "B did not time out within 1500 ms of its queueTimeout deadline" times out.
 */
import { startNode, TestNode } from "../../support/orchestrator";
import { getJob, KeyControl, readJournal, submit, useControlledTarget, waitForEntry, waitState, writeControl } from "../../support/controlled";
import { restJobId } from "../../../lib/jobs/model";
import { waitFor } from "../../support/wait";

const SLOW_MS = 8000;
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];
const QUEUE_TIMEOUT_MS = 500;
const LATE_BY_AT_MOST_MS = 1500;

const nodes: TestNode[] = [];
afterAll(async () => {
  for (const n of nodes) await n.stop();
});

/** A job B blocked behind a running job of the same deployment (concurrency key) must reach timed_out within 1.5 s of createdAt + queueTimeout. */
async function expectQueueTimeoutOnTime(node: TestNode, blockedDeployment: string) {
  const res = await node.http("POST", "/api/jobs", { type: "ctl", deploymentId: blockedDeployment, runMs: 0, timeouts: { queueTimeout: QUEUE_TIMEOUT_MS } });
  expect(res.status).toBe(202);
  const id = res.body.job.id as string;
  const deadline = Date.parse(res.body.job.createdAt) + QUEUE_TIMEOUT_MS;
  const done = await waitState(node, id, ["timed_out", "succeeded", "failed", "cancelled"], {
    timeout: Math.max(0, deadline + LATE_BY_AT_MOST_MS - Date.now()),
    message: `B did not time out within ${LATE_BY_AT_MOST_MS} ms of its queueTimeout deadline`,
  });
  expect(done.job.state).toBe("timed_out");
  expect(done.attempts).toHaveLength(0);
  const event = done.history.find((e: any) => e.to === "timed_out");
  expect(event.data.timeout).toBe("queueTimeout");
  expect(Date.parse(event.at) - deadline).toBeLessThanOrEqual(LATE_BY_AT_MOST_MS);
}

async function nodeWithBlocker(stamp: string, keys: (a: string) => Record<string, KeyControl>) {
  const node = await startNode({ configure: useControlledTarget });
  nodes.push(node);
  const blocker = await submit(node, { type: "ctl", deploymentId: `blk-${stamp}` }); // runs until stopped
  await waitState(node, blocker, ["running"]);
  const a = restJobId("admin", `a-${stamp}`); // REST job keys live in the caller's namespace
  writeControl(node.dataDir, { keys: keys(`${a}:1`) });
  return { node, a, blocked: `blk-${stamp}` };
}

test("a timed-out job whose stop takes 8 s does not hold up another job's queueTimeout", async () => {
  const stamp = `stop-${Date.now()}`;
  const { node, a, blocked } = await nodeWithBlocker(stamp, (key) => ({ [key]: { stopDelayMs: SLOW_MS } }));
  await submit(node, { type: "ctl", jobId: `a-${stamp}`, deploymentId: `dep-${a}`, timeouts: { runTimeout: 300 } }); // runs until stopped
  await waitForEntry(node.dataDir, (e) => e.op === "stop" && e.key === `${a}:1`, { timeout: 5000, message: "A's runTimeout never led to a stop" });
  await expectQueueTimeoutOnTime(node, blocked);
}, 30_000);

test("a finishing attempt whose logs take 8 s does not hold up another job's queueTimeout", async () => {
  const stamp = `logs-${Date.now()}`;
  const { node, a, blocked } = await nodeWithBlocker(stamp, (key) => ({ [key]: { logsDelayMs: SLOW_MS } }));
  await submit(node, { type: "ctl", jobId: `a-${stamp}`, deploymentId: `dep-${a}`, runMs: 200 });
  // A is finishing: its logs are being collected (or, on an engine that does not collect them then, it has ended).
  await waitFor(
    async () => readJournal(node.dataDir).some((e) => e.op === "logs" && e.key === `${a}:1`) || FINAL.includes((await getJob(node, a)).job.state),
    { timeout: 5000, message: "A never finished" },
  );
  await expectQueueTimeoutOnTime(node, blocked);
}, 30_000);
