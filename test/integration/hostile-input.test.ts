import Database from "better-sqlite3";
import path from "node:path";
import { EXECUTE_QUEUE } from "../../lib/amqp/topology";
import { BackendClient } from "../support/amqp";
import { hostileCases, HostileCase } from "../support/hostile";
import { lastSeq } from "../support/outbox";
import { startNode, TestNode } from "../support/orchestrator";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * ACCEPTANCE (1): ≥ 10,000 seeded hostile payloads over REST and over AMQP. The node stays
 * up, each is refused with a named reason, nothing is launched, Object.prototype is untouched.
 */
const REST_CASES = Number(process.env.FUZZ_REST ?? 10_000);
const AMQP_CASES = Number(process.env.FUZZ_AMQP ?? 10_000);
const MAX_BYTES = 64 * 1024;
const BATCH = 50;

let node: TestNode;
let backend: BackendClient;
let vhost: TestVhost;

beforeAll(async () => {
  vhost = createVhost("hostile");
  backend = await BackendClient.connect("test-hostile-input", vhost.url);
  node = await startNode({
    env: { AMQP_URL: vhost.url, AMQP_MAX_MESSAGE_BYTES: String(MAX_BYTES), AMQP_PREFETCH: "256" },
    configure: (c) => {
      // The production policy: no local repositories, no test commands; any public host after a DNS check.
      c.policy.allowLocalRepositories = false;
      c.policy.allowTestCommands = false;
    },
  });
}, 300_000);

afterAll(async () => {
  try {
    await node?.stop();
    await backend?.close();
  } finally {
    vhost?.remove();
  }
});

function expectNamed(c: HostileCase, fields: Array<{ field: string }> | undefined, where: string) {
  if (!Array.isArray(fields) || fields.length === 0 || fields.some((f) => typeof f.field !== "string")) throw new Error(`${where}: ${c.kind} refused without fields: ${c.text.slice(0, 200)}`);
  if (c.field !== null && !fields.some((f) => f.field === c.field || f.field.startsWith(`${c.field}.`))) {
    throw new Error(`${where}: ${c.kind} named ${JSON.stringify(fields.map((f) => f.field))}, expected ${c.field}: ${c.text.slice(0, 200)}`);
  }
}

function attemptsAndJobs(): { attempts: number; queued: number } {
  const db = new Database(path.join(node.dataDir, "blacktree.db"), { readonly: true });
  try {
    return {
      attempts: (db.prepare("SELECT COUNT(*) AS n FROM attempts").get() as { n: number }).n,
      queued: (db.prepare("SELECT COUNT(*) AS n FROM jobs WHERE state <> 'rejected'").get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
}

describe("hostile input", () => {
  test(`${REST_CASES} payloads over REST: each 4xx with the field named; nothing stored or launched`, async () => {
    const cases = hostileCases(REST_CASES, 7, { hugeBytes: 300 * 1024, prefix: "rest" });
    const started = Date.now();
    const statuses = new Map<number, number>();
    for (let i = 0; i < cases.length; i += BATCH) {
      await Promise.all(
        cases.slice(i, i + BATCH).map(async (c) => {
          const res = await node.http("POST", "/api/jobs", c.text);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status < 400 || res.status > 499) throw new Error(`REST: ${c.kind} answered ${res.status}: ${c.text.slice(0, 200)}`);
          expectNamed(c, res.body?.error?.fields, "REST");
        }),
      );
    }
    console.log(`hostile-input REST: ${cases.length} payloads in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(attemptsAndJobs()).toEqual({ attempts: 0, queued: 0 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await node.http("GET", "/health")).status).toBe(200);
  });

  test(`${AMQP_CASES} payloads over AMQP: each a rejected job with fields or a dead letter with a reason; nothing launched`, async () => {
    const cases = hostileCases(AMQP_CASES, 11, { hugeBytes: MAX_BYTES + 1024, prefix: "amqp" });
    const started = Date.now();
    cases.forEach((c, i) => backend.publishJob(c.text, { messageId: `fuzz-${i}` }));
    await backend.confirmed();
    const letters = (): number => {
      const db = new Database(path.join(node.dataDir, "blacktree.db"), { readonly: true });
      try {
        return (db.prepare("SELECT (SELECT COUNT(*) FROM dead_letters) + (SELECT COUNT(*) FROM jobs WHERE source = 'amqp') AS n").get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    await waitFor(async () => letters() === cases.length && (await backend.messageCount(EXECUTE_QUEUE)) === 0, { timeout: 120_000, interval: 250, message: `${cases.length} outcomes stored` });
    const elapsed = Date.now() - started;

    const db = new Database(path.join(node.dataDir, "blacktree.db"), { readonly: true });
    try {
      const jobs = db.prepare("SELECT id, state, error FROM jobs WHERE source = 'amqp'").all() as Array<{ id: string; state: string; error: string }>;
      const dead = db.prepare("SELECT reason, properties FROM dead_letters").all() as Array<{ reason: string; properties: string }>;
      expect(jobs.every((j) => j.state === "rejected")).toBe(true);
      for (const j of jobs) {
        const index = Number(/^fuzz-(\d+)$/.exec(j.id)?.[1]);
        expectNamed(cases[index], JSON.parse(j.error).fields, `AMQP ${j.id}`);
      }
      expect(dead.every((d) => /^[A-Z_]+$/.test(d.reason))).toBe(true);
      const reasons: Record<string, number> = {};
      for (const d of dead) reasons[d.reason] = (reasons[d.reason] ?? 0) + 1;
      console.log(`hostile-input AMQP: ${cases.length} payloads in ${elapsed} ms; ${jobs.length} rejected jobs, dead letters ${JSON.stringify(reasons)}`);
    } finally {
      db.close();
    }
    expect(attemptsAndJobs()).toEqual({ attempts: 0, queued: 0 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await node.http("GET", "/health")).status).toBe(200);
    // Every rejection's failure result goes out.
    await waitFor(async () => (await node.rt.store.getCursor("amqp")) === (await lastSeq(node.rt.store)), { timeout: 120_000, interval: 250, message: "amqp sink drained" });
  });
});
