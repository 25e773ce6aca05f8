/**
 * The one schema of the job store, as numbered migrations every dialect applies in order.
 * Portable on purpose: JSON is TEXT, timestamps are epoch ms in a 64-bit integer, and the
 * only dialect-specific pieces are the column types below.
 */

export type SqlDialect = "sqlite" | "postgres";

interface ColumnTypes {
  /** Epoch milliseconds and sequence numbers: need 64 bits. */
  bigint: string;
  /** The outbox key: increasing in commit order and never reused. */
  serialKey: string;
}

const COLUMN_TYPES: Record<SqlDialect, ColumnTypes> = {
  // AUTOINCREMENT so that a sequence number is never reused after rows are deleted.
  sqlite: { bigint: "INTEGER", serialKey: "INTEGER PRIMARY KEY AUTOINCREMENT" },
  postgres: { bigint: "BIGINT", serialKey: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" },
};

export interface Migration {
  version: number;
  name: string;
  statements(dialect: SqlDialect): string[];
}

/** Records which migrations ran; created before any migration. */
export function migrationsTableSql(dialect: SqlDialect): string {
  const t = COLUMN_TYPES[dialect];
  return `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at ${t.bigint} NOT NULL
  )`;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "jobs, secrets, attempts, events, sink cursors",
    statements(dialect) {
      const t = COLUMN_TYPES[dialect];
      return [
        `CREATE TABLE jobs (
          id TEXT PRIMARY KEY,
          type TEXT NOT NULL,
          state TEXT NOT NULL,
          deployment_id TEXT,
          priority INTEGER NOT NULL DEFAULT 0,
          target TEXT,
          concurrency_key TEXT,
          params TEXT NOT NULL,
          timeouts TEXT NOT NULL,
          retry TEXT NOT NULL,
          attempt INTEGER NOT NULL DEFAULT 0,
          source TEXT NOT NULL,
          parent_id TEXT,
          created_at ${t.bigint} NOT NULL,
          updated_at ${t.bigint} NOT NULL,
          run_after ${t.bigint},
          deadline ${t.bigint},
          result TEXT,
          error TEXT,
          version INTEGER NOT NULL DEFAULT 1
        )`,
        // Claiming: equality on state, then already in claim order; run_after is filtered
        // from the index without visiting the table.
        `CREATE INDEX jobs_claim_idx ON jobs (state, priority DESC, created_at, id, run_after)`,
        // Listing (newest first) and jobsInStates (oldest first) walk these either way.
        `CREATE INDEX jobs_created_idx ON jobs (created_at, id)`,
        `CREATE INDEX jobs_state_created_idx ON jobs (state, created_at, id)`,
        `CREATE INDEX jobs_type_created_idx ON jobs (type, created_at, id)`,
        `CREATE INDEX jobs_deployment_created_idx ON jobs (deployment_id, created_at, id)`,

        // Apart from jobs so that no query for a job can return a secret by accident.
        `CREATE TABLE job_secrets (
          job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          name TEXT NOT NULL,
          value TEXT NOT NULL,
          PRIMARY KEY (job_id, name)
        )`,

        `CREATE TABLE attempts (
          job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          attempt INTEGER NOT NULL,
          target TEXT NOT NULL,
          key TEXT NOT NULL UNIQUE,
          handle TEXT,
          state TEXT NOT NULL,
          launched_at ${t.bigint} NOT NULL,
          started_at ${t.bigint},
          ended_at ${t.bigint},
          heartbeat_at ${t.bigint},
          exit_code INTEGER,
          outcome TEXT,
          reason TEXT,
          result TEXT,
          log TEXT,
          PRIMARY KEY (job_id, attempt)
        )`,

        // The outbox: the job's history and the feed of every status sink.
        `CREATE TABLE events (
          seq ${t.serialKey},
          job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          kind TEXT NOT NULL,
          from_state TEXT,
          to_state TEXT,
          attempt INTEGER,
          data TEXT NOT NULL,
          at ${t.bigint} NOT NULL
        )`,
        `CREATE INDEX events_job_idx ON events (job_id, seq)`,

        `CREATE TABLE sink_cursors (
          sink TEXT PRIMARY KEY,
          seq ${t.bigint} NOT NULL
        )`,
      ];
    },
  },
  {
    version: 2,
    name: "dead letters",
    statements(dialect) {
      const t = COLUMN_TYPES[dialect];
      return [
        // Messages the intake could not turn into a job; the body is stored with its token redacted.
        `CREATE TABLE dead_letters (
          id TEXT PRIMARY KEY,
          source TEXT NOT NULL,
          reason TEXT NOT NULL,
          detail TEXT NOT NULL,
          body TEXT NOT NULL,
          properties TEXT NOT NULL,
          received_at ${t.bigint} NOT NULL,
          replayed_at ${t.bigint},
          replay_count INTEGER NOT NULL DEFAULT 0
        )`,
        `CREATE INDEX dead_letters_received_idx ON dead_letters (received_at, id)`,
      ];
    },
  },
  {
    version: 3,
    name: "jobs.submitted_by",
    statements() {
      return [
        // The API key name that submitted a REST job: a submitter sees only its own jobs.
        `ALTER TABLE jobs ADD COLUMN submitted_by TEXT`,
        `CREATE INDEX jobs_submitted_by_idx ON jobs (submitted_by, created_at)`,
      ];
    },
  },
  {
    version: 4,
    name: "engine: wake-ups, compute held by attempts, durable effects",
    statements(dialect) {
      const t = COLUMN_TYPES[dialect];
      return [
        // When the clock must next look at a job (a deadline or the end of a backoff): the
        // clock reads only due rows through this index, never every queued job.
        `ALTER TABLE jobs ADD COLUMN wake_at ${t.bigint}`,
        `CREATE INDEX jobs_wake_idx ON jobs (wake_at) WHERE wake_at IS NOT NULL`,
        // Claims walk each task type's queue in claim order (the rowid, the order of storing,
        // ends every index), so a type blocked by its limit costs nothing to skip.
        `CREATE INDEX jobs_claim_type_idx ON jobs (state, type, priority DESC, created_at)`,
        // Attempts that hold compute (launching, running, stopping) are found by state.
        `CREATE INDEX attempts_state_idx ON attempts (state)`,
        // Work a decision causes (follow-ups, cancellations, stopping a worker), written in
        // the decision's own transaction and carried out at least once.
        `CREATE TABLE effects (
          id ${t.serialKey},
          job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          kind TEXT NOT NULL,
          payload TEXT NOT NULL,
          created_at ${t.bigint} NOT NULL,
          run_after ${t.bigint} NOT NULL,
          leased_until ${t.bigint},
          tries INTEGER NOT NULL DEFAULT 0,
          last_error TEXT,
          done_at ${t.bigint}
        )`,
        `CREATE INDEX effects_due_idx ON effects (run_after) WHERE done_at IS NULL`,
        // Leases: one holder at a time of a loop that must not run twice (a status sink's
        // drain, the reaper), taken over when the holder stops renewing.
        `CREATE TABLE leases (
          name TEXT PRIMARY KEY,
          holder TEXT NOT NULL,
          expires_at ${t.bigint} NOT NULL
        )`,
        ...(dialect === "postgres"
          ? [
              // The order of storing (SQLite has the rowid): claims break ties of one millisecond with it.
              `ALTER TABLE jobs ADD COLUMN stored BIGINT GENERATED ALWAYS AS IDENTITY`,
              `CREATE INDEX jobs_claim_stored_idx ON jobs (state, type, priority DESC, created_at, stored)`,
              // Identity values follow inserts, not commits: the drain gives each committed event
              // its position in commit order, and sinks read by position (see the store).
              `ALTER TABLE events ADD COLUMN pos BIGINT`,
              `CREATE UNIQUE INDEX events_pos_idx ON events (pos)`,
              `CREATE INDEX events_unplaced_idx ON events (seq) WHERE pos IS NULL`,
            ]
          : []),
      ];
    },
  },
  {
    version: 5,
    name: "attempts: lines of log posted",
    statements() {
      // Lines the worker posted so far: the stored log keeps only its tail, and a log follower
      // resuming needs each line's number within the attempt.
      return [`ALTER TABLE attempts ADD COLUMN log_lines INTEGER NOT NULL DEFAULT 0`];
    },
  },
  {
    version: 6,
    name: "PostgreSQL: the claim index holds queued jobs only",
    statements(dialect) {
      if (dialect !== "postgres") return [];
      // PostgreSQL writes a new entry in every index for each row version whose indexed
      // columns changed, and `state` changes on every transition: three claim indexes cost
      // three entries per transition for jobs long past the queue. One partial index of the
      // queued jobs serves the claim and the skip-scan of queued types; a job leaving the
      // queue is no longer written to it.
      return [
        `DROP INDEX jobs_claim_idx`,
        `DROP INDEX jobs_claim_type_idx`,
        `DROP INDEX jobs_claim_stored_idx`,
        `CREATE INDEX jobs_queued_idx ON jobs (type, priority DESC, created_at, stored) WHERE state = 'queued'`,
      ];
    },
  },
  {
    version: 7,
    name: "jobs.trace_context",
    statements() {
      // The W3C traceparent of the job's trace (lib/tracing.ts): spans on any node join it.
      return [`ALTER TABLE jobs ADD COLUMN trace_context TEXT`];
    },
  },
  {
    version: 8,
    name: "PostgreSQL: outbox placing and a claim's first reads in one call each",
    statements(dialect) {
      if (dialect !== "postgres") return [];
      // Placing took BEGIN, the lock, the UPDATE and COMMIT (four round trips) before every
      // read of the outbox. In a function each statement still takes its own snapshot, so the
      // UPDATE after the lock sees every placement committed before it, as it did. (Reading
      // the batch in the same call held the lock through the read: one job's latency grew.)
      return [
        `CREATE FUNCTION blacktree_place_events(batch integer) RETURNS void LANGUAGE plpgsql AS $$
         BEGIN
           PERFORM pg_advisory_xact_lock(hashtext('blacktree.outbox.place'));
           UPDATE events e SET pos = p.pos FROM (
             SELECT seq, (SELECT COALESCE(MAX(pos), 0) FROM events) + ROW_NUMBER() OVER (ORDER BY seq) AS pos
             FROM (SELECT seq FROM events WHERE pos IS NULL ORDER BY seq LIMIT batch) unplaced
           ) p WHERE e.seq = p.seq;
         END $$`,
        // A claim opens with the cluster-wide claim lock, then reads what attempts hold and
        // which types are queued (a skip-scan of the queue index), after the lock is held.
        `CREATE FUNCTION blacktree_claim_begin(holding text[]) RETURNS json LANGUAGE plpgsql AS $$
         DECLARE held json; queued json;
         BEGIN
           PERFORM pg_advisory_xact_lock(hashtext('blacktree.claim'));
           SELECT COALESCE(json_agg(h), '[]') INTO held FROM (
             SELECT j.type, a.target, j.concurrency_key, COUNT(*) AS n FROM attempts a JOIN jobs j ON j.id = a.job_id
             WHERE a.state = ANY(holding) GROUP BY j.type, a.target, j.concurrency_key) h;
           WITH RECURSIVE t(type) AS (
             SELECT (SELECT MIN(type) FROM jobs WHERE state = 'queued')
             UNION ALL
             SELECT (SELECT MIN(type) FROM jobs WHERE state = 'queued' AND type > t.type) FROM t WHERE t.type IS NOT NULL
           ) SELECT COALESCE(json_agg(type), '[]') INTO queued FROM t WHERE type IS NOT NULL;
           RETURN json_build_object('held', held, 'types', queued);
         END $$`,
      ];
    },
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
