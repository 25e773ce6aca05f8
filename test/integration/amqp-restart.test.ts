import { ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { BACKEND_RESULTS, backendMessage, BackendClient } from "../support/amqp";
import { createVhost, TestVhost } from "../support/vhost";
import { runTmp } from "../support/entry-point";
import { INSTANT_PLUGIN } from "../support/instant";
import { authHeader, freePort, ROOT, tempDir, TEST_API_KEYS_ENV } from "../support/orchestrator";
import { LAUNCH_LOG } from "../support/plugins/instant";
import { waitFor } from "../support/wait";

/**
 * The real entry point with AMQP_URL, killed with SIGKILL in the middle of a 1,000-job
 * burst and started again on the same data: every job is stored once and gets exactly
 * one legacy result in the backend's queue.
 */
const TSX = pathToFileURL(require.resolve("tsx")).href;
const JOBS = 1000;
let orchestrator: ChildProcess | undefined;
let vhost: TestVhost;
const clients: BackendClient[] = [];

beforeAll(async () => {
  vhost = createVhost("restart");
}, 300_000);

afterAll(async () => {
  try {
    orchestrator?.kill("SIGKILL");
    for (const c of clients) await c.close();
  } finally {
    vhost?.remove();
  }
});

function startProcess(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ["--import", TSX, path.join(ROOT, "bin/blacktree.ts")], {
    cwd: ROOT,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...runTmp(), BLACKTREE_API_KEYS: TEST_API_KEYS_ENV, BLACKTREE_RATE_LIMIT: "100000000", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

/** Read-only look at the node's database: job counts and whether the AMQP sink sent everything. */
function inspectDb(file: string) {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const jobs = db.prepare("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").all() as Array<{ state: string; n: number }>;
    const lastSeq = (db.prepare("SELECT MAX(seq) FROM events").pluck().get() as number | null) ?? 0;
    const cursor = (db.prepare("SELECT seq FROM sink_cursors WHERE sink = 'amqp'").pluck().get() as number | undefined) ?? 0;
    const count = (s: string) => jobs.find((j) => j.state === s)?.n ?? 0;
    return { total: jobs.reduce((a, j) => a + j.n, 0), succeeded: count("succeeded"), drained: cursor === lastSeq };
  } finally {
    db.close();
  }
}

test("kill -9 in the middle of a 1,000-job burst, restart: every job stored once, exactly one result each", async () => {
  const run = randomUUID().slice(0, 8);
  const publisher = await BackendClient.connect("test-restart-publisher", vhost.url);
  clients.push(publisher);

  const dir = tempDir();
  const config = JSON.parse(fs.readFileSync(path.join(ROOT, "plugins.config.json"), "utf8"));
  config.plugins.push({ use: INSTANT_PLUGIN });
  config.routing.byType = { build: "instant" };
  config.limits = { global: 500, byType: { build: 500 } };
  const configFile = path.join(dir, "plugins.config.json");
  fs.writeFileSync(configFile, JSON.stringify(config));
  const dataDir = path.join(dir, "data");
  const port = await freePort();
  const env = { DATA_DIR: dataDir, PORT: String(port), HOST: "127.0.0.1", PLUGINS_CONFIG: configFile, LOG_LEVEL: "warn", AMQP_URL: vhost.url, RECONCILE_INTERVAL_MS: "100", DISPATCH_INTERVAL_MS: "100", RELAUNCH_AFTER_MS: "1000" };
  const db = path.join(dataDir, "blacktree.db");
  const healthy = () => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);

  orchestrator = startProcess(env);
  await waitFor(healthy, { timeout: 30_000, message: "orchestrator did not start" });
  const started = Date.now();
  const ids = Array.from({ length: JOBS }, (_, i) => `restart-${run}-${i}`);
  for (const id of ids) publisher.publishJob(backendMessage(id));
  await publisher.confirmed();

  const atKill = await waitFor(() => {
    const s = inspectDb(db);
    return s.total >= 300 ? s : null;
  }, { timeout: 30_000, interval: 10, message: "300 jobs stored" });
  orchestrator.kill("SIGKILL");
  await new Promise((resolve) => orchestrator!.once("exit", resolve));
  const afterKill = inspectDb(db);

  orchestrator = startProcess(env);
  await waitFor(healthy, { timeout: 30_000, message: "orchestrator did not restart" });
  const done = await waitFor(() => {
    const s = inspectDb(db);
    return s.succeeded === JOBS && s.drained ? s : null;
  }, { timeout: 90_000, interval: 100, message: "all jobs succeeded and their results sent" });
  const elapsed = Date.now() - started;
  expect(done.total).toBe(JOBS);

  // One attempt per job; a key may be launched again after the crash, never a second attempt.
  const keys = new Set(fs.readFileSync(path.join(dataDir, LAUNCH_LOG), "utf8").trim().split("\n"));
  expect(keys.size).toBe(JOBS);
  expect([...keys].every((k) => k.endsWith(":1"))).toBe(true);

  const reader = await BackendClient.connect("test-restart-reader", vhost.url);
  clients.push(reader);
  const results = (await reader.drain(BACKEND_RESULTS)).map((m) => JSON.parse(m.body));
  const perDeployment = new Map<string, number>();
  for (const r of results) perDeployment.set(r.deploymentId, (perDeployment.get(r.deploymentId) ?? 0) + 1);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: authHeader() })).text();
  const skipped = Number(/blacktree_amqp_results_already_delivered_total (\d+)/.exec(metrics)?.[1] ?? 0);
  const redelivered = Number(/blacktree_amqp_messages_consumed_total\{queue="execute.queue",redelivered="true"\} (\d+)/.exec(metrics)?.[1] ?? 0);
  process.stdout.write(
    `amqp-restart: killed at ${atKill.total}→${afterKill.total} stored / ${afterKill.succeeded} succeeded; ${JOBS} jobs done in ${elapsed} ms; redeliveries after restart ${redelivered}; in-doubt results found routed and not resent ${skipped}\n`,
  );
  expect({ duplicates: [...perDeployment].filter(([, n]) => n > 1), missing: ids.filter((id) => !perDeployment.has(id)) }).toEqual({ duplicates: [], missing: [] });
  expect(results).toHaveLength(JOBS);
}, 180_000);
