/**
 * Finding 11 — the clock reads every queued job on every tick.
 *
 * 20,000 queued jobs are blocked by a concurrency key (one job of that key runs). With
 * nothing changing, the engine's reads through the public JobStore interface during 1 s
 * must stay under 2,000 rows in total (the count is the sum of the lengths of the arrays
 * every store method returned, taken by a Proxy around the node's store).
 *
 * FAILS ON MAIN: lifecycle.expireWaiting calls store.jobsInStates(["queued"]) on every
 * tick (RECONCILE_INTERVAL_MS = 100) and gets all 19,999 queued rows back each time (the
 * ticks slow down to a few a second under that load): `underLimit` is false with 40,000–80,000
 * rows, all of them from jobsInStates (shown in `seen`).
 */
import path from "node:path";
import type { NewJob } from "../../../lib/jobs/model";
import { SQLITE_FILE_NAME } from "../../../lib/store";
import type { JobStore } from "../../../lib/store/job-store";
import { SqliteJobStore } from "../../../lib/store/sqlite/sqlite-store";
import { nodeStoreCounter } from "../../support/counting-store";
import { useControlledTarget } from "../../support/controlled";
import { startNode, tempDir, TestNode } from "../../support/orchestrator";
import { waitFor } from "../../support/wait";
import { newJob } from "../../support/jobs";

const QUEUED = 20_000;
const WINDOW_MS = 1000;
const MAX_ROWS = 2000;
const KEY = "full-scan";

let node: TestNode | undefined;
afterAll(() => node?.stop());

function queuedCtl(i: number): NewJob {
  // No runMs: the one that runs, runs until stopped.
  return newJob(`scan-${String(i).padStart(5, "0")}`, { type: "ctl", deploymentId: KEY, target: "controlled", concurrencyKey: KEY, params: { deploymentId: KEY, exitCode: 0 } });
}

const activeAndQueued = async (store: JobStore) => {
  const counts = await store.countByState();
  const sum = (state: string) => counts.filter((c) => c.state === state).reduce((n, c) => n + c.count, 0);
  return { running: sum("running"), launching: sum("launching"), queued: sum("queued"), total: counts.reduce((n, c) => n + c.count, 0) };
};

test(`with ${QUEUED} queued jobs blocked by a limit, 1 s of idle clock reads fewer than ${MAX_ROWS} rows`, async () => {
  const dataDir = tempDir();
  const seed = new SqliteJobStore({ file: path.join(dataDir, SQLITE_FILE_NAME) });
  await seed.migrate();
  for (let i = 0; i < QUEUED; i++) await seed.createJob(queuedCtl(i), 1_700_000_000_000 + i);
  await seed.close();

  const counter = nodeStoreCounter();
  node = await startNode({
    dataDir,
    configure: useControlledTarget,
    wrapStore: counter.wrapStore,
  });
  const { raw, reads } = counter;
  // The oldest job of the key is claimed and runs; the other 19,999 wait behind it.
  await waitFor(async () => {
    const s = await activeAndQueued(raw!);
    return s.running === 1 && s.launching === 0 && s.queued === QUEUED - 1;
  }, { timeout: 20_000, message: "the first job never ran with the rest queued behind it" });
  const before = await raw!.readEvents(0, 1_000_000);
  // The status drains publish the 20,000 jobs' creation events first: reading new events is
  // not a scan. Measure once every sink has caught up with the outbox.
  const last = before[before.length - 1].seq;
  await waitFor(async () => (await raw!.getCursor("moleculer-events")) >= last, { timeout: 30_000, message: "the status drain never caught up with the outbox" });

  reads!.reset();
  reads!.counting = true;
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS)); // the measured window: nothing changes in it
  reads!.counting = false;

  // Idle indeed: no job changed state during the window.
  const after = await raw!.readEvents(before.length ? before[before.length - 1].seq : 0, 1_000_000);
  expect(after.filter((e) => e.to !== null)).toEqual([]);
  const seen = `${reads!.rows} rows in ${WINDOW_MS} ms of idle clock: ${JSON.stringify({ rowsByMethod: reads!.rowsByMethod, callsByMethod: reads!.callsByMethod })}`;
  expect({ underLimit: reads!.rows < MAX_ROWS, seen }).toEqual({ underLimit: true, seen });
}, 60_000);
