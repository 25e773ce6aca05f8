import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import type { Channel } from "amqplib";
import { DEAD_LETTER_QUEUE } from "../../lib/amqp/topology";
import { BACKEND_RESULTS, BackendClient } from "../support/amqp";
import { CaptureLogger } from "../support/capture-logger";
import { lastSeq } from "../support/outbox";
import { ROOT, startNode, tempDir, TEST_KEYS, TestNode } from "../support/orchestrator";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * ACCEPTANCE (2): the job token appears nowhere the orchestrator writes — logs, database
 * rows (secrets are sealed, then wiped), AMQP results and status events, dead letters,
 * REST responses, /metrics. And workers never see the orchestrator's own credentials.
 */
const TOKEN = `ghp_LeakCanary${randomBytes(12).toString("hex")}`;
const ORCHESTRATOR_SECRETS = {
  AWS_SECRET_ACCESS_KEY: `aws-orchestrator-secret-${randomBytes(8).toString("hex")}`,
  BLACKTREE_SECRETS_KEY: randomBytes(32).toString("hex"),
  BLACKTREE_CALLBACK_SECRET: `callback-secret-${randomBytes(8).toString("hex")}`,
  BLACKTREE_API_KEY_PEPPER: `pepper-${randomBytes(16).toString("hex")}`,
};
const FINAL = ["succeeded", "failed", "timed_out", "cancelled", "rejected"];

let node: TestNode;
let backend: BackendClient;
let statusWatch: Channel;
let repo: string;
let vhost: TestVhost;
const logger = new CaptureLogger({ level: "debug" });
const wire: string[] = [];
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  vhost = createVhost("secret-leaks");
  repo = path.join(tempDir(), "hello");
  execFileSync("bash", [path.join(ROOT, "examples/create-local-repo.sh"), repo]);
  // The orchestrator's own process environment holds credentials a worker must never see.
  for (const [k, v] of Object.entries({ ...ORCHESTRATOR_SECRETS, BLACKTREE_API_KEYS: `leak:admin:${TEST_KEYS.admin}` })) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  backend = await BackendClient.connect("test-secret-leaks", vhost.url);
  statusWatch = await backend.watchStatus((e) => wire.push(JSON.stringify(e)));
  await backend.channel.consume(BACKEND_RESULTS, (m) => m && wire.push(m.content.toString("utf8")), { noAck: true });
  node = await startNode({ env: { AMQP_URL: vhost.url, LOG_LEVEL: "debug", ...ORCHESTRATOR_SECRETS }, broker: { logger } });
}, 300_000);

afterAll(async () => {
  try {
    await statusWatch?.close().catch(() => undefined);
    await node?.stop();
    await backend?.close();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
    vhost?.remove();
  }
});

async function waitFinal(id: string) {
  return waitFor(async () => {
    const r = await node.http("GET", `/api/jobs/${id}`);
    return FINAL.includes(r.body?.job?.state) ? r.body : null;
  }, { timeout: 30_000, message: `job ${id} final` });
}

test("the token is nowhere but in the sealed secrets column, and workers see none of the orchestrator's credentials", async () => {
  const responses: string[] = [];
  const http = async (method: string, route: string, body?: unknown) => {
    const r = await node.http(method, route, body);
    responses.push(r.text);
    return r;
  };
  const build = { type: "build", repository: repo, branch: "main", token: TOKEN };

  const restBuild = (await http("POST", "/api/jobs", { ...build, deploymentId: "leak-rest" })).body.job.id;
  const envDump = (await http("POST", "/api/jobs", { type: "test", deploymentId: "leak-env", repository: repo, token: TOKEN, testCommand: "env; cat /proc/$PPID/environ 2>/dev/null | tr '\\0' '\\n'" })).body.job.id;
  const toCancel = (await http("POST", "/api/jobs", { type: "test", deploymentId: "leak-cancel", repository: repo, token: TOKEN, testCommand: "sleep 30" })).body.job.id;
  expect((await http("POST", "/api/jobs", { ...build, deploymentId: "leak-bad", branch: "--upload-pack=x" })).status).toBe(422);
  backend.publishJob({ ...build, deploymentId: "leak-amqp" }, { messageId: "leak-amqp" });
  backend.publishJob({ ...build, deploymentId: "leak-rejected", branch: "-x" }, { messageId: "leak-rejected" });
  backend.publishJob(`{"deploymentId":"leak-dead","token":"${TOKEN}", oops`, { messageId: "leak-dead" });
  await backend.confirmed();

  await waitFor(async () => (await node.http("GET", `/api/jobs/${toCancel}`)).body.job.state === "running", { timeout: 30_000, message: "cancel target running" });
  await http("POST", `/api/jobs/${toCancel}/cancel`, { reason: "leak test" });
  const ids = [restBuild, envDump, toCancel, "leak-amqp", "leak-rejected"];
  const done = await Promise.all(ids.map(async (id) => (await waitFor(() => node.rt.store.getJob(id), { message: `job ${id} stored` }), waitFinal(id))));
  expect(done.map((d) => d.job.state)).toEqual(["succeeded", "succeeded", "cancelled", "succeeded", "rejected"]);
  await waitFor(async () => (await node.http("GET", "/api/dead-letters")).body.items.length === 1, { message: "dead letter" });
  await waitFor(async () => (await node.rt.store.getCursor("amqp")) === (await lastSeq(node.rt.store)), { timeout: 30_000, message: "amqp sink drained" });
  // Legacy results only for the jobs from execute.queue (the REST jobs are on api.status).
  await waitFor(() => wire.filter((w) => w.startsWith('{"deploymentId"')).length >= 2, { message: "legacy results" });

  // Every final path wiped the secrets (nothing left even sealed).
  for (const id of ids) expect(await node.rt.store.getSecrets(id)).toEqual({});

  for (const id of ids) {
    await http("GET", `/api/jobs/${id}`);
    await http("GET", `/api/jobs/${id}/logs`);
  }
  await http("GET", "/api/jobs?limit=500");
  await http("GET", "/api/dead-letters");
  await http("GET", "/api/plugins");
  await http("GET", "/metrics");
  const dlq = (await backend.drain(DEAD_LETTER_QUEUE)).map((m) => m.body + JSON.stringify(m.headers));

  // The database as a file (with its WAL): every table, every column.
  const dbFile = path.join(node.dataDir, "blacktree.db");
  const db = new Database(dbFile, { readonly: true });
  const rows: string[] = [];
  try {
    for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>) rows.push(JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all()));
  } finally {
    db.close();
  }
  const files = [dbFile, `${dbFile}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f).toString("latin1"));

  const everywhere = { logs: logger.lines.join("\n"), rows: rows.join("\n"), files: files.join("\n"), wire: wire.join("\n"), dlq: dlq.join("\n"), responses: responses.join("\n") };
  for (const [where, text] of Object.entries(everywhere)) {
    expect({ where, hits: text.split(TOKEN).length - 1 }).toEqual({ where, hits: 0 });
    expect({ where, sawJobs: text.includes("leak-") }).toEqual({ where, sawJobs: true }); // the search did look at real output
  }
  expect(logger.lines.length).toBeGreaterThan(50); // the capture did see the node talk (debug level)

  // The test worker ran `env` (and read its parent's environment): none of the orchestrator's credentials.
  const envLog = (await node.http("GET", `/api/jobs/${envDump}/logs`)).body.attempts[0].lines.join("\n");
  expect(envLog).toMatch(/PATH=/);
  for (const value of [...Object.values(ORCHESTRATOR_SECRETS), TEST_KEYS.admin]) expect(envLog).not.toContain(value);
});
