/**
 * The launcher claims when a commit can give it something: a job queued, or a slot freed. A
 * commit that only claimed, launched or started jobs wakes no claim pass: on PostgreSQL each
 * pass is a transaction of two round trips, and they ran after every claim and launch.
 */
import { nodeStoreCounter } from "../support/counting-store";
import { useInstantTarget } from "../support/instant";
import { newJob } from "../support/jobs";
import { startNode, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

const JOBS = 30;

let node: TestNode | undefined;
afterAll(() => node?.stop());

test(`${JOBS} jobs one after another: about two claim passes a job (its submission, its end), each job run once`, async () => {
  const counter = nodeStoreCounter();
  node = await startNode({ configure: useInstantTarget, wrapStore: counter.wrapStore });
  const { raw, reads } = counter;
  const succeeded = async () => (await raw!.countByState()).filter((c) => c.state === "succeeded").reduce((n, c) => n + c.count, 0);
  reads!.counting = true;
  const started = Date.now();
  for (let i = 0; i < JOBS; i++) {
    await raw!.createJob(newJob(`one-by-one-${i}`, { target: "instant-push" }));
    await waitFor(async () => (await succeeded()) === i + 1, { timeout: 10_000, message: `job ${i} did not succeed` });
  }
  reads!.counting = false;
  // The launcher's sweep claims too, once a second (DISPATCH_INTERVAL_MS).
  const sweeps = Math.ceil((Date.now() - started) / 1000) + 1;
  const claimPasses = reads!.callsByMethod.claimJobs ?? 0;
  // Waking on every commit made 3.2 a job (96 here): after the submission, the claim, the launch
  // and the end, less those that came during a pass. A wake during a pass runs one more: 2.2 now.
  expect(claimPasses).toBeLessThanOrEqual(2.5 * JOBS + sweeps);
  for (let i = 0; i < JOBS; i++) expect((await raw!.getAttempts(`one-by-one-${i}`)).map((a) => a.state)).toEqual(["exited"]);
});
