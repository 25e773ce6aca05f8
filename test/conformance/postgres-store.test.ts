import { PostgresJobStore } from "../../lib/store/postgres/postgres-store";
import { SecretBox } from "../../lib/secrets/secret-box";
import { createDatabase, TestDatabase } from "../support/postgres";
import { storeConformance } from "./store-conformance";
import { newJob } from "../support/jobs";

/** The PostgreSQL dialect passes the same conformance suite as SQLite, each test on a database of its own. */
const secrets = new SecretBox(Buffer.alloc(32, 9));
const databases: TestDatabase[] = [];
const urls = new WeakMap<object, string>();

// One database per test: on a loaded machine dropping them all takes longer than jest's 60 s hook default.
afterAll(async () => {
  for (const db of databases.splice(0)) await db.drop();
}, 300_000);

storeConformance(
  "postgres",
  async () => {
    const db = await createDatabase("conf");
    databases.push(db);
    const store = new PostgresJobStore({ url: db.url, secrets });
    urls.set(store, db.url);
    return store;
  },
  { openPeer: async (store) => new PostgresJobStore({ url: urls.get(store)!, secrets }) },
);

describe("the outbox in commit order (PostgreSQL assigns identity values at insert, not at commit)", () => {
  test("an event whose transaction commits late is read after the ones that committed before it, never skipped", async () => {
    const db = await createDatabase("latecommit");
    databases.push(db);
    const store = new PostgresJobStore({ url: db.url, secrets });
    const { Client } = await import("pg");
    const late = new Client({ connectionString: db.url });
    try {
      await store.migrate();
      await store.createJob({ ...newJob("early"), state: "queued" });
      // A writer that takes its identity value now and commits later (a slow transaction of another node).
      await late.connect();
      await late.query("BEGIN");
      await late.query(`INSERT INTO jobs (id, type, state, priority, params, timeouts, retry, attempt, source, created_at, updated_at, version)
        VALUES ('late', 'build', 'queued', 0, '{}', '{}', '{}', 0, 'internal', 1, 1, 1)`);
      await late.query(`INSERT INTO events (job_id, kind, from_state, to_state, attempt, data, at) VALUES ('late', 'job.created', NULL, 'queued', NULL, '{}', 1)`);
      // Meanwhile another job commits: its identity value is higher than the late one's.
      await store.createJob({ ...newJob("after"), state: "queued" });

      const first = await store.readEvents(0, 100);
      expect(first.map((e) => e.jobId)).toEqual(["early", "after"]);
      const cursor = first[first.length - 1].seq;

      await late.query("COMMIT");
      const next = await store.readEvents(cursor, 100);
      expect(next.map((e) => e.jobId)).toEqual(["late"]);
      expect(next[0].seq).toBeGreaterThan(cursor);
      // The job's history reads the same positions.
      expect((await store.getEvents("late")).map((e) => e.seq)).toEqual([next[0].seq]);
    } finally {
      await late.end().catch(() => undefined);
      await store.close();
    }
  });
});

describe("placing the outbox", () => {
  test("readers that come at once share placements: 8 readers, at most 2 placements, each sees every committed event", async () => {
    const db = await createDatabase("placing");
    databases.push(db);
    const { Client } = await import("pg");
    const admin = new Client({ connectionString: db.url });
    await admin.connect();
    // Counts calls of the placing function per database; the backends' counts are flushed when they exit (the store's close).
    await admin.query(`ALTER DATABASE ${db.name} SET track_functions = 'pl'`);
    const store = new PostgresJobStore({ url: db.url, secrets });
    try {
      await store.migrate();
      for (const id of ["p1", "p2", "p3"]) await store.createJob({ ...newJob(id), state: "queued" });
      const reads = await Promise.all(Array.from({ length: 8 }, () => store.readEvents(0, 100)));
      for (const events of reads) expect(events.map((e) => e.jobId)).toEqual(["p1", "p2", "p3"]);
      // One more after a commit: a reader after the shared placements still sees the new event.
      await store.createJob({ ...newJob("p4"), state: "queued" });
      expect((await store.readEvents(reads[0][2].seq, 100)).map((e) => e.jobId)).toEqual(["p4"]);
    } finally {
      await store.close();
    }
    const calls = await admin.query("SELECT calls FROM pg_stat_user_functions WHERE funcname = 'blacktree_place_events'");
    await admin.end();
    // Each reader placing for itself made 8 placements, then 1.
    expect(Number(calls.rows[0]?.calls)).toBeLessThanOrEqual(3);
  });
});
