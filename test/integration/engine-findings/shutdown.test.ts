/**
 * Finding 12 — what a node leaves behind when it stops, and what it never cleans up.
 *
 * (a) FAILS ON MAIN: TestNode.stop() = broker.stop() + store.close(). The dispatcher's
 *     launch is fire-and-forget, so stop() returns at once while the 1.5 s launch is in
 *     flight; the store is closed; when the launch returns, recording its handle fails
 *     with STORE_UNAVAILABLE "The job store is closed" (logged). The check object shows
 *     launchFinishedBeforeStopReturned: false and handle: null (and any "store is closed"
 *     log lines under `closedErrors`).
 * (b) FAILS ON MAIN: the process target keeps `<DATA_DIR>/process/<key>.{json,exit,log}`
 *     forever. Its config has no retention setting, and its schema is strict, so on main
 *     the node does not even start with `retentionMs` (TARGET_CONFIG_INVALID
 *     "config.retentionMs"). ASSUMED NAME: the process target's config key `retentionMs`
 *     (ms after an attempt's worker ended, once its job is final, before its files go).
 */
import fs from "node:fs";
import path from "node:path";
import { SQLITE_FILE_NAME } from "../../../lib/store";
import { SqliteJobStore } from "../../../lib/store/sqlite/sqlite-store";
import { safeKey } from "../../../plugins/targets/process/state-files";
import { CaptureLogger } from "../../support/capture-logger";
import { readJournal, submit, useControlledTarget, waitForEntry, waitState, writeControl } from "../../support/controlled";
import { restJobId } from "../../../lib/jobs/model";
import { startNode, TestNode } from "../../support/orchestrator";
import { waitFor } from "../../support/wait";

const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];
const started: TestNode[] = [];
afterAll(async () => {
  for (const n of started) await n.stop().catch(() => undefined);
});

test("stop() while a launch is in flight waits for it and records its handle; nothing logs 'store is closed'", async () => {
  const logger = new CaptureLogger({ level: "debug" });
  const node = await startNode({ env: { LOG_LEVEL: "debug" }, broker: { logger }, configure: useControlledTarget });
  started.push(node);
  const given = `shut-${Date.now()}`;
  const id = restJobId("admin", given); // REST job keys live in the caller's namespace
  const key = `${id}:1`;
  writeControl(node.dataDir, { keys: { [key]: { launchDelayMs: 1500 } } });
  await submit(node, { type: "ctl", jobId: given, deploymentId: "shut" });
  await waitForEntry(node.dataDir, (e) => e.op === "launch" && e.key === key, { message: "the launch never began" });
  expect(readJournal(node.dataDir).some((e) => e.op === "launched" && e.key === key)).toBe(false);

  await node.stop();
  const stoppedAt = Date.now();
  started.splice(started.indexOf(node), 1);
  // On a node that did not wait, the launch returns later: let it, and let whatever it does get logged.
  const launched = await waitForEntry(node.dataDir, (e) => e.op === "launched" && e.key === key, { timeout: 3000 });
  await new Promise((resolve) => setTimeout(resolve, 500)); // short window for a late "store is closed" to be logged

  const reopened = new SqliteJobStore({ file: path.join(node.dataDir, SQLITE_FILE_NAME) });
  let handle: unknown;
  try {
    handle = (await reopened.getAttempt(id, 1))?.handle ?? null;
  } finally {
    await reopened.close();
  }
  const closedErrors = logger.lines.filter((l) => /store is closed|STORE_UNAVAILABLE/i.test(l));
  expect({ launchFinishedBeforeStopReturned: launched.at <= stoppedAt, handle, closedErrors }).toEqual({
    launchFinishedBeforeStopReturned: true,
    handle: { key },
    closedErrors: [],
  });
}, 20_000);

test("the process target removes a finished attempt's record, exit file and log after retentionMs", async () => {
  const RETENTION_MS = 2000;
  const node = await startNode({
    env: { REAP_INTERVAL_MS: "300" },
    configure: (c) => {
      c.plugins = c.plugins.map((p) => (p.use === "./plugins/targets/process" ? { ...p, config: { ...p.config, retentionMs: RETENTION_MS } } : p));
      c.plugins.push({ use: path.join(__dirname, "../../support/plugins/script-plugin.ts") });
    },
  });
  started.push(node);
  const id = await submit(node, { type: "script", script: "console.log('retained for a while')" });
  const done = await waitState(node, id, FINAL, { timeout: 20_000 });
  expect(done.job.state).toBe("succeeded");

  const stateDir = path.join(node.dataDir, "process");
  const prefix = `${safeKey(done.attempts[0].key)}.`;
  const filesOfAttempt = () => fs.readdirSync(stateDir).filter((n) => n.startsWith(prefix));
  // Kept for a while (the logs stay readable)…
  expect(filesOfAttempt()).toEqual(expect.arrayContaining([`${prefix}exit`, `${prefix}json`, `${prefix}log`]));
  // …then removed.
  await waitFor(() => filesOfAttempt().length === 0, { timeout: RETENTION_MS + 5000, message: `the attempt's files are still in ${stateDir} after retentionMs` });
}, 30_000);
