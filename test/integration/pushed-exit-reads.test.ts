/**
 * A target that pushes a worker's exit gets it decided once: the prompt inspection that
 * follows every launch (the safety net for targets that do not push) finds the attempt
 * already ended on this node and reads nothing more.
 *
 * Before the reconciler remembered the attempts it ended, each job cost two reads of its
 * attempt by key (the push's decision, then the inspection's, which found it ended):
 * about 2 × JOBS `attemptByKey` calls (the PostgreSQL bench counted 1.56 a job).
 */
import { nodeStoreCounter } from "../support/counting-store";
import { useInstantTarget } from "../support/instant";
import { newJob } from "../support/jobs";
import { startNode, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

const JOBS = 60;

let node: TestNode | undefined;
afterAll(() => node?.stop());

test(`${JOBS} jobs whose exits are pushed: one attempt read each, every job succeeded once`, async () => {
  const counter = nodeStoreCounter();
  node = await startNode({
    configure: useInstantTarget,
    wrapStore: counter.wrapStore,
  });
  const { raw, reads } = counter;
  reads!.counting = true;
  for (let i = 0; i < JOBS; i++) await raw!.createJob(newJob(`pushed-${i}`, { target: "instant-push" }));
  const ended = async () => (await raw!.countByState()).filter((c) => c.state === "succeeded").reduce((n, c) => n + c.count, 0);
  await waitFor(async () => (await ended()) === JOBS, { timeout: 20_000, message: "not every job succeeded" });
  // The prompt inspections of the last launches (20 ms after them) have run and been decided.
  await waitFor(async () => (await raw!.activeAttempts()).length === 0 && (reads!.callsByMethod.attemptByKey ?? 0) >= JOBS, { timeout: 5_000 });
  // An extra read would come from an inspection after the end: give the last ones (20 ms after their launch) room to show.
  await new Promise((resolve) => setTimeout(resolve, 200));
  reads!.counting = false;

  const attemptReads = reads!.callsByMethod.attemptByKey ?? 0;
  expect({ attemptReads, transitions: reads!.callsByMethod.transition }).toEqual({ attemptReads: expect.any(Number), transitions: JOBS });
  // A status racing the push's own decision may still read once more; never a second read a job.
  expect(attemptReads).toBeLessThanOrEqual(JOBS * 1.2);
  for (let i = 0; i < JOBS; i++) expect((await raw!.getAttempts(`pushed-${i}`)).map((a) => a.state)).toEqual(["exited"]);
});
