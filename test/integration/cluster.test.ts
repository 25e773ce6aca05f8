import { ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Client } from "pg";
import { backendMessage, BackendClient, BACKEND_RESULTS } from "../support/amqp";
import { INSTANT_PLUGIN } from "../support/instant";
import { authHeader, freePort, ROOT, tempDir, TEST_API_KEYS_ENV } from "../support/orchestrator";
import { LAUNCH_LOG } from "../support/plugins/instant";
import { createDatabase, TestDatabase } from "../support/postgres";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * Distributed mode with real processes: one PostgreSQL store, a front node
 * (gateway + intake + validator) and two back nodes (dispatcher + lifecycle + status +
 * targets) on a real transporter. 1,000 jobs over REST and AMQP; one back node is killed
 * with SIGKILL mid-run (a replacement joins), later the holder of the status lease. Every
 * job ends exactly once, no attempt is launched twice, the cluster-wide limit holds in every
 * sample, every job's events are published in order, and each job gets one legacy result.
 */
const TSX = pathToFileURL(require.resolve("tsx")).href;
const JOBS = 1000;
const GLOBAL_LIMIT = 20;

interface Node {
  id: string;
  child: ChildProcess;
  dataDir: string;
  ready: Promise<void>;
}

describe.each([
  ["NATS", (_vhost: TestVhost) => "nats://127.0.0.1:4222"],
  ["AMQP", (vhost: TestVhost) => vhost.url],
])("a cluster over %s", (_name, transporterOf) => {
  let db: TestDatabase;
  let vhost: TestVhost;
  let backend: BackendClient;
  const nodes: Node[] = [];
  const statusEvents: Array<{ seq: number; jobId: string; to: string | null; kind: string }> = [];

  beforeAll(async () => {
    db = await createDatabase("cluster");
    vhost = createVhost("cluster");
    backend = await BackendClient.connect("test-cluster", vhost.url);
    await backend.watchStatus((e) => statusEvents.push(e));
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) n.child.kill("SIGKILL");
    await backend?.close();
    vhost?.remove();
    await db?.drop();
    for (const n of nodes) fs.rmSync(n.dataDir, { recursive: true, force: true });
  });

  test(`${JOBS} jobs survive the loss of a back node and of the status lease holder`, async () => {
    const port = await freePort();
    const configDir = tempDir("blacktree-cluster-");
    const configFile = path.join(configDir, "plugins.config.json");
    const config = JSON.parse(fs.readFileSync(path.join(ROOT, "plugins.config.json"), "utf8"));
    config.plugins.push({ use: INSTANT_PLUGIN, config: {} });
    config.routing.byType.build = "instant";
    config.limits = { global: GLOBAL_LIMIT };
    fs.writeFileSync(configFile, JSON.stringify(config));
    const shared = {
      DATABASE_URL: db.url,
      TRANSPORTER: transporterOf(vhost),
      NAMESPACE: `bt-${randomUUID().slice(0, 8)}`,
      AMQP_URL: vhost.url,
      PLUGINS_CONFIG: configFile,
      // One cluster, one set of secrets: the store's sealed tokens and the workers' callback tokens cross nodes.
      BLACKTREE_SECRETS_KEY: randomBytes(32).toString("base64"),
      BLACKTREE_CALLBACK_SECRET: randomBytes(32).toString("hex"),
      BLACKTREE_API_KEY_PEPPER: randomBytes(32).toString("hex"),
      // info: a node says it is running (the readiness line below).
      LOG_LEVEL: "info",
      RECONCILE_INTERVAL_MS: "200",
      DISPATCH_INTERVAL_MS: "200",
      RELAUNCH_AFTER_MS: "1000",
      PORT: String(port),
      HOST: "127.0.0.1",
    };
    const start = (id: string, services: string) => {
      const node = startNode(id, { ...shared, SERVICES: services });
      nodes.push(node);
      return node;
    };
    const front = start("front", "gateway,intake,validator");
    const backs = [start("back-1", "dispatcher,lifecycle,status,targets"), start("back-2", "dispatcher,lifecycle,status,targets")];
    await Promise.all([front.ready, ...backs.map((b) => b.ready)]);

    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    const violations: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await pg.query("SELECT COUNT(*)::int AS n FROM attempts WHERE state IN ('launching', 'running', 'stopping')");
        if (rows[0].n > GLOBAL_LIMIT) violations.push(`${rows[0].n} attempts hold compute > ${GLOBAL_LIMIT}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const finals = async () => Number((await pg.query("SELECT COUNT(*)::int AS n FROM jobs WHERE state IN ('succeeded', 'failed', 'timed_out', 'cancelled')")).rows[0].n);

    try {
      const run = randomUUID().slice(0, 8);
      const restIds = Array.from({ length: JOBS / 2 }, (_, i) => `rest-${run}-${i}`);
      const amqpIds = Array.from({ length: JOBS / 2 }, (_, i) => `amqp-${run}-${i}`);
      for (const id of amqpIds) backend.publishJob(backendMessage(id), { messageId: id });
      await backend.confirmed();
      await Promise.all(
        restIds.map(async (id) => {
          const res = await fetch(`http://127.0.0.1:${port}/api/jobs`, { method: "POST", headers: authHeader(), body: JSON.stringify({ ...backendMessage(id), jobId: id }) });
          if (res.status !== 202) throw new Error(`submit ${id}: ${res.status} ${await res.text()}`);
        }),
      );

      await waitFor(async () => (await finals()) >= JOBS * 0.25, { timeout: 60_000, interval: 50, message: "a quarter of the jobs never ended" });
      await killHard(backs[0].child);
      const replacement = start("back-3", "dispatcher,lifecycle,status,targets");
      await replacement.ready;

      await waitFor(async () => (await finals()) >= JOBS * 0.6, { timeout: 60_000, interval: 50, message: "60 % of the jobs never ended" });
      // The holder of the AMQP sink's lease, once a live node holds it (a dead holder's lease runs out first).
      const holderNode = await waitFor(async () => {
        const holder = (await pg.query("SELECT holder FROM leases WHERE name = 'sink:amqp'")).rows[0]?.holder as string | undefined;
        return nodes.find((n) => n.id === holder && n.child.exitCode === null && n.child.signalCode === null);
      }, { timeout: 30_000, message: "no live node holds the amqp sink's lease" });
      // The front node's /metrics sums the cluster's: it counts transitions only the back nodes
      // saw. Asked while back nodes that drained events since the first kill are alive: the
      // kill below may take every count with it (the jobs can all have ended by then).
      await waitFor(async () => {
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: authHeader() })).text();
        return Number(/^blacktree_job_transitions_total\{[^}]*to="succeeded"[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? 0) > 0;
      }, { timeout: 30_000, interval: 200, message: "the front's /metrics never counted a back node's transitions" });
      await killHard(holderNode.child);

      await waitFor(async () => (await finals()) === JOBS, { timeout: 90_000, interval: 100, message: "not every job ended" });
      // Every event reached the sinks (the last status node drained what the dead holder left).
      await waitFor(async () => {
        const { rows } = await pg.query("SELECT (SELECT COALESCE(MAX(pos), 0) FROM events) AS last, (SELECT seq FROM sink_cursors WHERE sink = 'amqp') AS cursor");
        return rows[0].cursor !== null && Number(rows[0].cursor) >= Number(rows[0].last) && (await pg.query("SELECT COUNT(*)::int AS n FROM events WHERE pos IS NULL")).rows[0].n === 0;
      }, { timeout: 30_000, message: "the amqp sink never caught up" });
      sampling = false;
      await sampler;

      // Exactly one final state per job, and all of them succeeded.
      const { rows: states } = await pg.query("SELECT state, COUNT(*)::int AS n FROM jobs GROUP BY state");
      expect(states).toEqual([{ state: "succeeded", n: JOBS }]);
      const { rows: finalEvents } = await pg.query("SELECT job_id, COUNT(*)::int AS n FROM events WHERE to_state IN ('succeeded', 'failed', 'timed_out', 'cancelled') GROUP BY job_id HAVING COUNT(*) <> 1");
      expect(finalEvents).toEqual([]);
      // One attempt each; a key launched twice only when the node that launched it first died (same key: one worker).
      expect((await pg.query("SELECT COUNT(*)::int AS n FROM attempts")).rows[0].n).toBe(JOBS);
      const launchesBy = new Map(nodes.map((n) => [n.id, readLaunches(n.dataDir)]));
      const all = [...launchesBy.values()].flat();
      const seen = new Map<string, number>();
      for (const key of all) seen.set(key, (seen.get(key) ?? 0) + 1);
      expect(seen.size).toBe(JOBS);
      const twice = [...seen].filter(([, n]) => n > 1).map(([key]) => key);
      const killed = new Set([...launchesBy.get(backs[0].id)!, ...launchesBy.get(holderNode.id)!]);
      expect(twice.filter((key) => !killed.has(key))).toEqual([]);
      expect(violations).toEqual([]);

      // Every job's events, in order (at least once: a re-sent event after a failover comes after the first).
      await waitFor(() => new Set(statusEvents.filter((e) => e.to === "succeeded").map((e) => e.jobId)).size === JOBS, { timeout: 30_000, message: "not every job's final event reached api.status" });
      const firstSeen = new Map<string, number[]>();
      const dedupe = new Set<number>();
      for (const e of statusEvents) {
        if (dedupe.has(e.seq)) continue;
        dedupe.add(e.seq);
        firstSeen.set(e.jobId, [...(firstSeen.get(e.jobId) ?? []), e.seq]);
      }
      const outOfOrder = [...firstSeen].filter(([, seqs]) => seqs.some((s, i) => i > 0 && s < seqs[i - 1]));
      expect(outOfOrder).toEqual([]);

      // Exactly one legacy result per job that came from execute.queue; none for REST jobs.
      const results = await waitFor(async () => {
        collected.push(...(await backend.drain(BACKEND_RESULTS)).map((m) => JSON.parse(m.body)));
        return collected.length >= amqpIds.length ? collected : null;
      }, { timeout: 30_000, message: "not every legacy result arrived" });
      const perDeployment = new Map<string, number>();
      for (const r of results) perDeployment.set(r.deploymentId, (perDeployment.get(r.deploymentId) ?? 0) + 1);
      expect([...perDeployment].filter(([, n]) => n !== 1)).toEqual([]);
      expect([...perDeployment.keys()].sort()).toEqual([...amqpIds].sort());
    } finally {
      sampling = false;
      await sampler.catch(() => undefined);
      await pg.end();
    }
  }, 240_000);

  const collected: any[] = [];
});

/** The real entry point as a node of the cluster; ready once it logged its start line. */
function startNode(id: string, env: Record<string, string>): Node {
  const dataDir = tempDir("blacktree-node-");
  const child = spawn(process.execPath, ["--import", TSX, path.join(ROOT, "bin/blacktree.ts")], {
    cwd: ROOT,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, BLACKTREE_API_KEYS: TEST_API_KEYS_ENV, BLACKTREE_RATE_LIMIT: "100000000", ...env, NODE_ID: id, DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
      if (/Blacktree Orchestrator .* running/.test(output)) resolve();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000)));
    child.once("exit", (code) => reject(new Error(`node ${id} exited with ${code} before it was ready: ${output.slice(-2000)}`)));
  });
  ready.catch(() => undefined);
  return { id, child, dataDir, ready };
}

async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

function readLaunches(dataDir: string): string[] {
  try {
    return fs.readFileSync(path.join(dataDir, LAUNCH_LOG), "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}
