import { Pool, PoolClient, types as pgTypes } from "pg";
import { blacktreeError } from "../../errors";
import { wakeAt } from "../../jobs/deadlines";
import { blockedScopes, countJob, emptyCounts, exceededScope } from "../../jobs/limits";
import type { ActiveCounts } from "../../jobs/limits";
import { attemptKey, HOLDING_ATTEMPT_STATES } from "../../jobs/model";
import type { Attempt, AttemptState, Job, JobEvent, NewJob } from "../../jobs/model";
import { assertTransition, FINAL_STATES } from "../../jobs/states";
import type { JobState } from "../../jobs/states";
import type { SecretBox } from "../../secrets/secret-box";
import type {
  ActiveAttempt,
  AttemptPatch,
  Claim,
  ClaimRequest,
  DeadLetter,
  Effect,
  EffectInput,
  EventInput,
  JobFilter,
  JobStore,
  NewDeadLetter,
  StoreChange,
  TransitionRequest,
} from "../job-store";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, migrationsTableSql } from "../schema";
import {
  ATTEMPT_COLUMNS,
  ATTEMPT_PATCH_COLUMNS,
  AttemptRow,
  checkInitial,
  claimOrder,
  decodeCursor,
  DeadLetterRow,
  EffectRow,
  encodeCursor,
  EventRow,
  holdAfter,
  newJobShape,
  noteWake,
  JOB_PATCH_COLUMNS,
  JobRow,
  pageSize,
  secretContext,
  snapshotOf,
  toAttempt,
  toDeadLetter,
  toEffect,
  toEvent,
  toJob,
  toJson,
  unprefix,
  UNCHOSEN_TARGET,
} from "../rows";

/** Keys of the advisory locks the store takes (one namespace, `hashtext` of a name). */
const LOCKS = { migrate: "blacktree.migrate" } as const;
/** Events given their outbox position per drain pass, at most. */
const PLACE_BATCH = 10_000;
/** Transactions that lost to a concurrent one (serialization failure, deadlock) are run again this often. */
const TX_TRIES = 5;
/**
 * Connections per node. A burst's inserts, claims and transitions each hold one for a round
 * trip: with 10, one node's burst waited on the pool (bench: 300 → 444 jobs/s with 20).
 */
export const DEFAULT_POOL_SIZE = 20;
/** Optimistic transitions that found the job changed since they read it are run again this often. */
const CAS_TRIES = 20;

/** The task types with queued jobs: a skip-scan of the claim index, one probe per type. */
const QUEUED_TYPES = `WITH RECURSIVE t(type) AS (
    SELECT (SELECT MIN(type) FROM jobs WHERE state = 'queued')
    UNION ALL
    SELECT (SELECT MIN(type) FROM jobs WHERE state = 'queued' AND type > t.type) FROM t WHERE t.type IS NOT NULL
  ) SELECT type FROM t WHERE type IS NOT NULL`;

/**
 * A claim's first round trip: BEGIN, then the claim lock, what attempts hold and which types
 * are queued (`blacktree_claim_begin`, whose statements keep their plans). A simple query of
 * constant text, so BEGIN travels with it.
 */
const CLAIM_OPENING = `BEGIN; SELECT blacktree_claim_begin(ARRAY[${HOLDING_ATTEMPT_STATES.map((state) => `'${state}'`).join(", ")}]) AS opening`;

interface HeldRow {
  type: string;
  target: string;
  concurrency_key: string | null;
  n: number;
}

function heldCounts(rows: readonly HeldRow[]): ActiveCounts {
  const counts = emptyCounts();
  for (const r of rows) countJob(counts, { type: r.type, target: r.target || null, concurrencyKey: r.concurrency_key }, Number(r.n));
  return counts;
}

/** BIGINT columns (epoch ms, sequence numbers) as numbers: they stay below 2^53. */
const TYPES = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === 20) return (value: string) => Number(value);
    return pgTypes.getTypeParser(oid, format as "text");
  },
};

interface Tx {
  one<T>(sql: string, params?: unknown[]): Promise<T | undefined>;
  all<T>(sql: string, params?: unknown[]): Promise<T[]>;
}

/**
 * The PostgreSQL dialect, for more than one node. Same schema, migrations and semantics as
 * SQLite; what differs is how concurrency is made safe:
 * - a transition is a compare-and-set on the job's version: it reads the job and its
 *   attempt, decides, and writes everything in one statement whose UPDATE applies only to
 *   the version read (a concurrent writer makes it read again). The statement's row lock is
 *   `FOR NO KEY UPDATE`'s, which does not block the key-share lock of an event insert on
 *   the same job (the foreign key): with `FOR UPDATE` a transition and an attempt update
 *   deadlocked (found by the PostgreSQL bench: 64 deadlocks in 90 jobs, 1 s each);
 * - claims take one advisory lock per transaction, so limits hold cluster-wide, and skip
 *   rows other transactions hold (`SKIP LOCKED`);
 * - the outbox: identity values are assigned at insert, not at commit, so a drain reading
 *   `seq > cursor` could skip a row whose transaction commits late. Each event gets its
 *   position (`pos`) only once it is committed, from one placer at a time (an advisory
 *   lock), in the order the placer sees commits; sinks read by position, so every reader
 *   sees a job's events in the order they committed.
 */
export class PostgresJobStore implements JobStore {
  readonly dialect = "postgres";
  private readonly pool: Pool;
  private readonly secrets: SecretBox | null;
  private readonly listeners = new Set<(change: StoreChange) => void>();
  /** createJob calls waiting for the insert under way, inserted together next (flushInserts). */
  private readonly pendingInserts: Array<{ input: NewJob; now: number; resolve: (out: { job: Job; created: boolean }) => void; reject: (err: unknown) => void }> = [];
  private inserting = false;
  private readonly now: () => number;
  private closed = false;
  /** The placement of the outbox under way, and the one that follows it for callers that came during it. */
  private placing: Promise<void> | null = null;
  private placingNext: Promise<void> | null = null;

  constructor(opts: { url: string; secrets?: SecretBox; clock?: () => number; poolSize?: number }) {
    this.pool = new Pool({ connectionString: opts.url, max: opts.poolSize ?? DEFAULT_POOL_SIZE, types: TYPES as never });
    // An idle client that loses its connection must not crash the process; the next query reports it.
    this.pool.on("error", () => undefined);
    this.secrets = opts.secrets ?? null;
    this.now = opts.clock ?? Date.now;
  }

  async migrate(): Promise<void> {
    const client = await this.connect();
    try {
      // One migrator at a time across nodes: the others wait, then find the work done.
      await client.query("SELECT pg_advisory_lock(hashtext($1))", [LOCKS.migrate]);
      await client.query(migrationsTableSql("postgres"));
      const applied = new Set((await client.query<{ version: number }>("SELECT version FROM schema_migrations")).rows.map((r) => r.version));
      const newest = Math.max(0, ...applied);
      if (newest > LATEST_SCHEMA_VERSION) {
        throw blacktreeError("CONFIG_INVALID", `The database schema is at version ${newest}, newer than this build knows (${LATEST_SCHEMA_VERSION})`);
      }
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        await client.query("BEGIN");
        try {
          for (const sql of migration.statements("postgres")) await client.query(sql);
          await client.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [migration.version, migration.name, Date.now()]);
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK");
          throw err;
        }
      }
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtext($1))", [LOCKS.migrate]).catch(() => undefined);
      client.release();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async ping(): Promise<void> {
    await this.read((q) => q.one("SELECT 1"));
  }

  /**
   * A job submitted while no insert is under way is inserted at once; the ones submitted
   * meanwhile (a burst on execute.queue, concurrent REST calls) wait for it and then go
   * together, in one statement: the per-statement cost is most of an insert's.
   */
  async createJob(input: NewJob, now = this.now()): Promise<{ job: Job; created: boolean }> {
    checkInitial(input);
    return new Promise((resolve, reject) => {
      this.pendingInserts.push({ input, now, resolve, reject });
      if (!this.inserting) void this.flushInserts();
    });
  }

  async createJobs(inputs: NewJob[], now = this.now()): Promise<Array<{ job: Job; created: boolean }>> {
    inputs.forEach(checkInitial);
    if (inputs.length === 0) return [];
    return this.write((q, change) => this.insertJobs(q, change, inputs.map((input) => ({ input, now }))), { oneStatement: true });
  }

  private async flushInserts(): Promise<void> {
    this.inserting = true;
    try {
      for (let batch = this.pendingInserts.splice(0); batch.length; batch = this.pendingInserts.splice(0)) {
        try {
          const out = await this.write((q, change) => this.insertJobs(q, change, batch), { oneStatement: true });
          batch.forEach((b, i) => b.resolve(out[i]));
        } catch (err) {
          if (batch.length === 1) {
            batch[0].reject(err);
            continue;
          }
          // One bad job must not fail the others submitted with it: each on its own.
          for (const b of batch) {
            await this.write((q, change) => this.insertJobs(q, change, [b]), { oneStatement: true }).then(
              ([out]) => b.resolve(out),
              (e: unknown) => b.reject(e),
            );
          }
        }
      }
    } finally {
      this.inserting = false;
    }
  }

  async getJob(id: string): Promise<Job | null> {
    return this.read(async (q) => {
      const row = await q.one<JobRow>("SELECT * FROM jobs WHERE id = $1", [id]);
      return row ? toJob(row) : null;
    });
  }

  async listJobs(filter: JobFilter): Promise<{ items: Job[]; nextCursor: string | null }> {
    const limit = pageSize(filter.limit);
    const after = filter.cursor === undefined ? null : decodeCursor(filter.cursor);
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, ...params: unknown[]) => {
      // `?` placeholders become $n in order.
      where.push(sql.replace(/\?/g, () => `$${values.push(params.shift()) }`));
    };
    if (filter.state !== undefined) add("state = ?", filter.state);
    if (filter.type !== undefined) add("type = ?", filter.type);
    if (filter.deploymentId !== undefined) add("deployment_id = ?", filter.deploymentId);
    if (filter.submittedBy !== undefined) add("submitted_by = ?", filter.submittedBy);
    if (after) add("(created_at < ? OR (created_at = ? AND id < ?))", after.createdAt, after.createdAt, after.id);
    values.push(limit + 1);
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id DESC LIMIT $${values.length}`;
    const rows = await this.read((q) => q.all<JobRow>(sql, values));
    const items = rows.slice(0, limit).map(toJob);
    return { items, nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]) : null };
  }

  async jobsInStates(states: readonly JobState[], limit?: number): Promise<Job[]> {
    if (states.length === 0) return [];
    const rows = await this.read((q) =>
      q.all<JobRow>(`SELECT * FROM jobs WHERE state = ANY($1::text[]) ORDER BY created_at, id ${limit === undefined ? "" : "LIMIT $2"}`, limit === undefined ? [states] : [states, Math.max(0, Math.trunc(limit))]),
    );
    return rows.map(toJob);
  }

  async countByState(): Promise<Array<{ state: JobState; type: string; target: string | null; count: number }>> {
    const rows = await this.read((q) => q.all<{ state: string; type: string; target: string | null; count: number }>("SELECT state, type, target, COUNT(*)::bigint AS count FROM jobs GROUP BY state, type, target ORDER BY state, type, target"));
    return rows.map((r) => ({ state: r.state as JobState, type: r.type, target: r.target, count: Number(r.count) }));
  }

  async transition(id: string, req: TransitionRequest): Promise<Job | null> {
    const from: readonly JobState[] = typeof req.from === "string" ? [req.from] : req.from;
    for (const state of from) assertTransition(state, req.to);
    const now = req.now ?? this.now();
    // Optimistic, without a transaction: read the job and its attempt (or take the basis the
    // decision was made on), decide here (the wake-up is computed from the row as it will
    // be, so the row is written once), then write everything in one statement that applies
    // only if the version is still the one read. A concurrent writer bumped the version:
    // read again (which fails a decision bound to the old version).
    let basis = usableBasis(id, req) ? req.basis : undefined;
    for (let tries = 1; ; tries++) {
      const read = basis ?? (await this.readWithAttempt(id));
      basis = undefined;
      if (!read || !from.includes(read.job.state)) return null;
      if (req.expect?.attempt !== undefined && req.expect.attempt !== read.job.attempt) return null;
      if (req.expect?.version !== undefined && req.expect.version !== read.job.version) return null;
      const current = read.job;
      const next: Job = { ...withPatch(current, req.patch ?? {}), state: req.to, version: current.version + 1, updatedAt: now };
      const attemptPatch = holdAfter(current.state, req.to, req.attempt, now);
      let attempt = next.attempt === 0 ? null : next.attempt === current.attempt ? read.attempt : await this.getAttempt(id, next.attempt);
      if (attempt && attemptPatch) attempt = withPatch(attempt, attemptPatch);
      const final = FINAL_STATES.includes(req.to);
      const wake = wakeAt(next, attempt);
      const { values, p } = numbered();
      const applied = "EXISTS (SELECT 1 FROM j)";
      const steps = [`j AS (UPDATE jobs SET state = ${p(req.to)}, version = version + 1, updated_at = ${p(now)}, wake_at = ${p(wake)}${assignments(req.patch ?? {}, JOB_PATCH_COLUMNS, p)} WHERE id = ${p(id)} AND version = ${p(current.version)} RETURNING *)`];
      const attemptSet = attempt && attemptPatch ? assignments(attemptPatch, ATTEMPT_PATCH_COLUMNS, p) : "";
      if (attemptSet) steps.push(`a AS (UPDATE attempts SET ${attemptSet.slice(2)} WHERE job_id = ${p(id)} AND attempt = ${p(next.attempt)} AND ${applied})`);
      if (final) steps.push(`s AS (DELETE FROM job_secrets WHERE job_id = ${p(id)} AND ${applied})`);
      const event = { kind: req.event?.kind ?? `job.${req.to}`, from: current.state, to: req.to, attempt: next.attempt || null, data: { ...(req.event?.data ?? {}), ...(final ? { snapshot: snapshotOf(next) } : {}) }, at: now };
      steps.push(eventStep(p, id, event, applied));
      if (req.effects?.length) steps.push(effectsStep(p, id, req.effects, now, applied));
      const written = await this.write(
        async (q, change) => {
          const out = await q.one<JobRow>(`WITH ${steps.join(", ")} SELECT * FROM j`, values);
          if (!out) return null;
          const job = toJob(out);
          noteWake(change, wake);
          if (req.effects?.length) change.effects = true;
          changed(change, job);
          return job;
        },
        { oneStatement: true },
      );
      if (written) return written;
      if (tries >= CAS_TRIES) throw blacktreeError("STORE_UNAVAILABLE", `job ${id} changed under ${CAS_TRIES} transitions in a row; try again`);
    }
  }

  /** The job and its current attempt, in one read. */
  private async readWithAttempt(id: string): Promise<{ job: Job; attempt: Attempt | null } | null> {
    const row = await this.read((q) => q.one<JobRow & Record<string, unknown>>(`SELECT j.*, ${PREFIXED_ATTEMPT} FROM jobs j LEFT JOIN attempts a ON a.job_id = j.id AND a.attempt = j.attempt WHERE j.id = $1`, [id]));
    return row ? { job: toJob(row), attempt: attemptOf(row) } : null;
  }

  async claimJobs(req: ClaimRequest): Promise<Claim[]> {
    if (req.max <= 0) return [];
    const claim = async (q: Tx, change: StoreChange, opened: unknown): Promise<Claim[]> => {
      // One claimer at a time, cluster-wide (the lock CLAIM_OPENING took): the counts stay true until this commits.
      const [, begun] = opened as Array<{ rows: Array<{ opening: { held: HeldRow[]; types: string[] } }> }>;
      const { held, types: queued } = begun.rows[0].opening;
      const counts = heldCounts(held);
      const claims: Claim[] = [];
      for (let round = 0; claims.length < req.max && round < 1000; round++) {
        if (req.limits.global !== undefined && counts.global >= req.limits.global) break;
        const blocked = blockedScopes(counts, req.limits);
        const want = req.max - claims.length;
        const queuedTypes = round === 0 ? queued : await this.queuedTypes(q);
        const types = queuedTypes.filter((t) => !blocked.types.includes(t));
        if (types.length === 0) break;
        // The head of each type's queue, in one statement; rows other claimers hold are skipped.
        const rows = await q.all<JobRow & { stored: number }>(
          `SELECT j.* FROM unnest($1::text[]) AS t(type) CROSS JOIN LATERAL (
             SELECT * FROM jobs WHERE state = 'queued' AND type = t.type AND (run_after IS NULL OR run_after <= $2)
               AND (target IS NULL OR target <> ALL($3::text[])) AND (concurrency_key IS NULL OR concurrency_key <> ALL($4::text[]))
             ORDER BY priority DESC, created_at, stored LIMIT $5 FOR NO KEY UPDATE SKIP LOCKED) j`,
          [types, req.now, blocked.targets, blocked.keys, want],
        );
        let filled = false;
        const admitted: Job[] = [];
        for (const candidate of rows.sort(claimOrder).slice(0, want).map(toJob)) {
          if (exceededScope(counts, candidate, req.limits) !== null) {
            filled = true;
            continue;
          }
          admitted.push(candidate);
          countJob(counts, candidate);
        }
        claims.push(...(await this.claimAll(q, change, admitted, req.now)));
        if (!filled) break;
      }
      return claims;
    };
    return this.write(claim, { opening: CLAIM_OPENING });
  }

  async getAttempts(jobId: string): Promise<Attempt[]> {
    return (await this.read((q) => q.all<AttemptRow>("SELECT * FROM attempts WHERE job_id = $1 ORDER BY attempt", [jobId]))).map(toAttempt);
  }

  async getAttempt(jobId: string, attempt: number): Promise<Attempt | null> {
    return this.read((q) => this.selectAttempt(q, jobId, attempt));
  }

  async getAttemptsOf(refs: ReadonlyArray<{ jobId: string; attempt: number }>): Promise<Attempt[]> {
    if (refs.length === 0) return [];
    const rows = await this.read((q) =>
      q.all<AttemptRow>("SELECT a.* FROM unnest($1::text[], $2::integer[]) AS r(job_id, attempt) JOIN attempts a USING (job_id, attempt)", [refs.map((r) => r.jobId), refs.map((r) => r.attempt)]),
    );
    return rows.map(toAttempt);
  }

  async updateAttempt(jobId: string, attempt: number, patch: AttemptPatch, opts: { event?: EventInput; onlyIfState?: readonly AttemptState[] } = {}): Promise<Attempt | null> {
    const movesWake = patch.heartbeatAt !== undefined || patch.startedAt !== undefined;
    if (!movesWake) {
      // Nothing to compute from the row first: the check, the update and its event in one statement.
      const { values, p } = numbered();
      const set = assignments(patch, ATTEMPT_PATCH_COLUMNS, p);
      if (set) {
        const steps = [`u AS (UPDATE attempts SET ${set.slice(2)} WHERE job_id = ${p(jobId)} AND attempt = ${p(attempt)}${opts.onlyIfState ? ` AND state = ANY(${p(opts.onlyIfState)}::text[])` : ""} RETURNING *)`];
        if (opts.event) {
          steps.push(`e AS (INSERT INTO events (job_id, kind, from_state, to_state, attempt, data, at)
            SELECT job_id, ${p(opts.event.kind ?? "attempt.updated")}, NULL, NULL, attempt, ${p(JSON.stringify(opts.event.data ?? {}))}, ${p(this.now())} FROM u)`);
        }
        return this.write(
          async (q, change) => {
            const row = await q.one<AttemptRow>(`WITH ${steps.join(", ")} SELECT * FROM u`, values);
            if (row && patch.state !== undefined) change.jobIds.push(jobId);
            return row ? toAttempt(row) : null;
          },
          { oneStatement: true },
        );
      }
    }
    return this.write(async (q, change) => {
      const row = await q.one<JobRow & Record<string, unknown>>(`SELECT j.*, ${PREFIXED_ATTEMPT} FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.job_id = $1 AND a.attempt = $2 FOR UPDATE OF a`, [jobId, attempt]);
      const current = row && attemptOf(row);
      if (!row || !current) return null;
      if (opts.onlyIfState && !opts.onlyIfState.includes(current.state)) return null;
      const { values, p } = numbered();
      const set = assignments(patch, ATTEMPT_PATCH_COLUMNS, p);
      const updated = withPatch(current, patch);
      const steps: string[] = [];
      if (set) steps.push(`u AS (UPDATE attempts SET ${set.slice(2)} WHERE job_id = ${p(jobId)} AND attempt = ${p(attempt)})`);
      // A sign of life moves the current attempt's deadlines, so the job's wake-up with them.
      if (movesWake && row.attempt === attempt) {
        const wake = wakeAt(toJob(row), updated);
        noteWake(change, wake);
        steps.push(`w AS (UPDATE jobs SET wake_at = ${p(wake)} WHERE id = ${p(jobId)})`);
      }
      if (opts.event) steps.push(eventStep(p, jobId, { kind: opts.event.kind ?? "attempt.updated", from: null, to: null, attempt, data: opts.event.data ?? {}, at: this.now() }));
      if (steps.length) await q.all(`WITH ${steps.join(", ")} SELECT 1`, values);
      if (patch.state !== undefined) change.jobIds.push(jobId);
      return updated;
    });
  }

  async activeAttempts(limit = 100_000): Promise<ActiveAttempt[]> {
    const rows = await this.read((q) =>
      q.all<JobRow & Record<string, unknown>>(
        `SELECT j.*, ${ATTEMPT_COLUMNS.map((c) => `a.${c} AS a_${c}`).join(", ")} FROM attempts a JOIN jobs j ON j.id = a.job_id
         WHERE a.state = ANY($1::text[]) ORDER BY a.launched_at, a.job_id, a.attempt LIMIT $2`,
        [HOLDING_ATTEMPT_STATES, Math.max(0, Math.trunc(limit))],
      ),
    );
    return rows.map(toActive);
  }

  async attemptByKey(key: string): Promise<ActiveAttempt | null> {
    const row = await this.read((q) => q.one<JobRow & Record<string, unknown>>(`SELECT j.*, ${ATTEMPT_COLUMNS.map((c) => `a.${c} AS a_${c}`).join(", ")} FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.key = $1`, [key]));
    return row ? toActive(row) : null;
  }

  async dueJobs(now: number, limit: number): Promise<Job[]> {
    return (await this.read((q) => q.all<JobRow>("SELECT * FROM jobs WHERE wake_at <= $1 ORDER BY wake_at LIMIT $2", [now, Math.max(0, Math.trunc(limit))]))).map(toJob);
  }

  async refreshWake(id: string): Promise<void> {
    await this.write(async (q) => {
      const row = await q.one<JobRow>("SELECT * FROM jobs WHERE id = $1 FOR NO KEY UPDATE", [id]);
      if (!row) return;
      const job = toJob(row);
      await this.setWake(q, job, job.attempt > 0 ? await this.selectAttempt(q, id, job.attempt) : null);
    });
  }

  async nextWake(): Promise<number | null> {
    return (await this.read((q) => q.one<{ at: number | null }>("SELECT MIN(wake_at) AS at FROM jobs WHERE wake_at IS NOT NULL")))?.at ?? null;
  }

  async leaseEffects(now: number, limit: number, leaseMs: number): Promise<Effect[]> {
    const rows = await this.write((q) =>
      q.all<EffectRow>(
        `UPDATE effects SET leased_until = $1 WHERE id IN (
           SELECT id FROM effects WHERE done_at IS NULL AND run_after <= $2 AND (leased_until IS NULL OR leased_until <= $2)
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *`,
        [now + leaseMs, now, Math.max(0, Math.trunc(limit))],
      ),
      { oneStatement: true },
    );
    return rows.map(toEffect).sort((x, y) => x.id - y.id);
  }

  async completeEffect(id: number, now = this.now()): Promise<void> {
    await this.write((q) => q.all("UPDATE effects SET done_at = $1, leased_until = NULL WHERE id = $2", [now, id]), { oneStatement: true });
  }

  async failEffect(id: number, error: string, retryAt: number, countsAsTry = true): Promise<void> {
    await this.write((q) => q.all("UPDATE effects SET tries = tries + $1, last_error = $2, run_after = $3, leased_until = NULL WHERE id = $4", [countsAsTry ? 1 : 0, error.slice(0, 1000), retryAt, id]), { oneStatement: true });
  }

  async addEffects(jobId: string, effects: EffectInput[]): Promise<void> {
    await this.write((q, change) => this.insertEffects(q, change, jobId, effects, this.now()));
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    const row = await this.write((q) =>
      q.one<{ holder: string }>(
        `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE leases.holder = excluded.holder OR leases.expires_at <= $4 RETURNING holder`,
        [name, holder, now + ttlMs, now],
      ),
      { oneStatement: true },
    );
    return row?.holder === holder;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.write((q) => q.all("DELETE FROM leases WHERE name = $1 AND holder = $2", [name, holder]), { oneStatement: true });
  }

  onCommit(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async getSecrets(jobId: string): Promise<Record<string, string>> {
    const rows = await this.read((q) => q.all<{ name: string; value: string }>("SELECT name, value FROM job_secrets WHERE job_id = $1 ORDER BY name", [jobId]));
    return Object.fromEntries(rows.map((r) => [r.name, this.secretBox().open(r.value, secretContext(jobId, r.name))]));
  }

  async takeSecrets(jobId: string, attempt: number, key: string): Promise<Record<string, string> | null> {
    return this.write(async (q) => {
      // The job row locked: a second take of the same key waits, then finds the first's event.
      const live = await q.one(
        `SELECT 1 FROM jobs j JOIN attempts a ON a.job_id = j.id AND a.attempt = j.attempt
         WHERE j.id = $1 AND j.attempt = $2 AND j.state IN ('launching', 'running') AND a.state IN ('launching', 'running') AND a.key = $3 FOR NO KEY UPDATE OF j`,
        [jobId, attempt, key],
      );
      if (!live) return null;
      const fetched = await q.one("SELECT 1 FROM events WHERE job_id = $1 AND attempt = $2 AND kind = 'attempt.secrets_fetched' AND (data::jsonb ->> 'key') = $3", [jobId, attempt, key]);
      if (fetched) return null;
      const rows = await q.all<{ name: string; value: string }>("SELECT name, value FROM job_secrets WHERE job_id = $1 ORDER BY name", [jobId]);
      const secrets = Object.fromEntries(rows.map((r) => [r.name, this.secretBox().open(r.value, secretContext(jobId, r.name))]));
      await this.insertEvent(q, jobId, { kind: "attempt.secrets_fetched", from: null, to: null, attempt, data: { names: Object.keys(secrets), key }, at: this.now() });
      return secrets;
    });
  }

  async getEvents(jobId: string): Promise<JobEvent[]> {
    await this.placeEvents();
    const rows = await this.read((q) => q.all<EventRow & { pos: number | null }>("SELECT * FROM events WHERE job_id = $1 ORDER BY seq", [jobId]));
    return rows.map(positioned);
  }

  async readEvents(afterSeq: number, limit: number): Promise<JobEvent[]> {
    // Placed first, in a statement of its own: the placing lock is released at its commit,
    // not held while the batch is read (readers of the outbox queue on that lock).
    await this.placeEvents();
    const rows = await this.read((q) => q.all<EventRow & { pos: number | null }>("SELECT * FROM events WHERE pos > $1 ORDER BY pos LIMIT $2", [afterSeq, Math.max(0, Math.trunc(limit))]));
    return rows.map(positioned);
  }

  async lastEventSeq(): Promise<number> {
    await this.placeEvents();
    return (await this.read((q) => q.one<{ pos: number }>("SELECT COALESCE(MAX(pos), 0) AS pos FROM events")))?.pos ?? 0;
  }

  async getCursor(sink: string): Promise<number> {
    return (await this.read((q) => q.one<{ seq: number }>("SELECT seq FROM sink_cursors WHERE sink = $1", [sink])))?.seq ?? 0;
  }

  async setCursor(sink: string, seq: number): Promise<void> {
    await this.write((q) => q.all("INSERT INTO sink_cursors (sink, seq) VALUES ($1, $2) ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq", [sink, seq]), { oneStatement: true });
  }

  async addDeadLetter(letter: NewDeadLetter): Promise<{ letter: DeadLetter; created: boolean }> {
    return this.write(async (q) => {
      const row = await q.one<DeadLetterRow>(
        `INSERT INTO dead_letters (id, source, reason, detail, body, properties, received_at, replayed_at, replay_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, 0) ON CONFLICT (id) DO NOTHING RETURNING *`,
        [letter.id, letter.source, letter.reason, letter.detail, letter.body, JSON.stringify(letter.properties), letter.receivedAt],
      );
      if (row) return { letter: toDeadLetter(row), created: true };
      return { letter: toDeadLetter((await q.one<DeadLetterRow>("SELECT * FROM dead_letters WHERE id = $1", [letter.id]))!), created: false };
    });
  }

  async getDeadLetter(id: string): Promise<DeadLetter | null> {
    const row = await this.read((q) => q.one<DeadLetterRow>("SELECT * FROM dead_letters WHERE id = $1", [id]));
    return row ? toDeadLetter(row) : null;
  }

  async listDeadLetters(limit?: number): Promise<DeadLetter[]> {
    return (await this.read((q) => q.all<DeadLetterRow>("SELECT * FROM dead_letters ORDER BY received_at DESC, id DESC LIMIT $1", [pageSize(limit)]))).map(toDeadLetter);
  }

  async markDeadLetterReplayed(id: string, now = this.now()): Promise<DeadLetter | null> {
    const row = await this.write((q) => q.one<DeadLetterRow>("UPDATE dead_letters SET replayed_at = $1, replay_count = replay_count + 1 WHERE id = $2 RETURNING *", [now, id]), { oneStatement: true });
    return row ? toDeadLetter(row) : null;
  }

  // ---- inside transactions ----

  /**
   * Rows, wake-ups, secrets, first events and effects of new jobs in one statement: all
   * depend only on the inputs, so no BEGIN and COMMIT. Rows are inserted in the order
   * given (their `stored` and their events' `seq` follow it); a job whose id exists is
   * left as it is and returned with `created: false`.
   */
  private async insertJobs(q: Tx, change: StoreChange, all: ReadonlyArray<{ input: NewJob; now: number }>): Promise<Array<{ job: Job; created: boolean }>> {
    // The same id twice: the first is inserted, the later ones find it.
    const seen = new Set<string>();
    const first = all.map(({ input }) => !seen.has(input.id) && Boolean(seen.add(input.id)));
    const items = all.filter((_, i) => first[i]);
    const shapes = items.map(({ input, now }) => newJobShape(input, now));
    const wakes = shapes.map((shape) => wakeAt(shape, null));
    const column = <T>(pick: (input: NewJob, i: number) => T) => items.map(({ input }, i) => pick(input, i));
    const { values, p } = numbered();
    const text = (pick: (input: NewJob, i: number) => string | null) => `${p(column(pick))}::text[]`;
    const bigint = (pick: (input: NewJob, i: number) => number | null) => `${p(column(pick))}::bigint[]`;
    const rejected = (input: NewJob) => input.state === "rejected";
    const steps = [
      `x AS (SELECT * FROM unnest(${text((j) => j.id)}, ${text((j) => j.type)}, ${text((j) => j.state)}, ${text((j) => j.deploymentId)}, ${p(column((j) => j.priority))}::integer[],
         ${text((j) => j.target)}, ${text((j) => j.concurrencyKey)}, ${text((j) => JSON.stringify(j.params))}, ${text((j) => JSON.stringify(j.timeouts))}, ${text((j) => JSON.stringify(j.retry))},
         ${text((j) => j.source)}, ${text((j) => j.parentId)}, ${bigint((_, i) => items[i].now)}, ${bigint((j) => j.runAfter)}, ${bigint((j) => j.deadline)}, ${text((j) => toJson(j.error))},
         ${text((j) => j.submittedBy ?? null)}, ${bigint((_, i) => wakes[i])}, ${text((j) => j.traceContext ?? null)},
         ${text((j) => (rejected(j) ? "job.rejected" : "job.created"))},
         ${text((j, i) => JSON.stringify({ type: j.type, deploymentId: j.deploymentId, source: j.source, ...(j.traceContext ? { traceContext: j.traceContext } : {}), ...(rejected(j) ? { snapshot: snapshotOf(shapes[i]) } : {}) }))})
         WITH ORDINALITY AS x(id, type, state, deployment_id, priority, target, concurrency_key, params, timeouts, retry, source, parent_id, now, run_after, deadline, error, submitted_by, wake_at, trace_context, event_kind, event_data, ord))`,
      `j AS (INSERT INTO jobs (id, type, state, deployment_id, priority, target, concurrency_key, params, timeouts, retry,
         attempt, source, parent_id, created_at, updated_at, run_after, deadline, result, error, version, submitted_by, wake_at, trace_context)
       SELECT id, type, state, deployment_id, priority, target, concurrency_key, params, timeouts, retry, 0, source, parent_id, now, now, run_after, deadline, NULL, error, 1, submitted_by, wake_at, trace_context
       FROM x ORDER BY ord ON CONFLICT (id) DO NOTHING RETURNING *)`,
      `e AS (INSERT INTO events (job_id, kind, from_state, to_state, attempt, data, at)
       SELECT x.id, x.event_kind, NULL, x.state, NULL, x.event_data, x.now FROM x JOIN j ON j.id = x.id ORDER BY x.ord)`,
    ];
    const secrets = items.flatMap(({ input }) => Object.entries(input.secrets).map(([name, value]) => ({ jobId: input.id, name, sealed: this.secretBox().seal(value, secretContext(input.id, name)) })));
    if (secrets.length) {
      steps.push(`s AS (INSERT INTO job_secrets (job_id, name, value)
        SELECT s.job_id, s.name, s.value FROM unnest(${p(secrets.map((x) => x.jobId))}::text[], ${p(secrets.map((x) => x.name))}::text[], ${p(secrets.map((x) => x.sealed))}::text[]) AS s(job_id, name, value)
        WHERE s.job_id IN (SELECT id FROM j))`);
    }
    const effects = items.flatMap(({ input, now }) => (input.effects ?? []).map((e) => ({ jobId: input.id, kind: e.kind, payload: JSON.stringify(e.payload), runAfter: now, now })));
    if (effects.length) {
      steps.push(`f AS (INSERT INTO effects (job_id, kind, payload, created_at, run_after, tries)
        SELECT f.job_id, f.kind, f.payload, f.now, f.run_after, 0 FROM unnest(${p(effects.map((x) => x.jobId))}::text[], ${p(effects.map((x) => x.kind))}::text[], ${p(effects.map((x) => x.payload))}::text[], ${p(effects.map((x) => x.now))}::bigint[], ${p(effects.map((x) => x.runAfter))}::bigint[]) AS f(job_id, kind, payload, now, run_after)
        WHERE f.job_id IN (SELECT id FROM j))`);
    }
    const rows = await q.all<JobRow>(`WITH ${steps.join(", ")} SELECT * FROM j`, values);
    const inserted = new Map(rows.map((row) => [row.id, toJob(row)]));
    const missing = items.filter(({ input }) => !inserted.has(input.id)).map(({ input }) => input.id);
    const existing = missing.length ? new Map((await q.all<JobRow>("SELECT * FROM jobs WHERE id = ANY($1::text[])", [missing])).map((row) => [row.id, toJob(row)])) : new Map<string, Job>();
    items.forEach(({ input }, i) => {
      const job = inserted.get(input.id);
      if (!job) return;
      noteWake(change, wakes[i]);
      if (input.effects?.length) change.effects = true;
      changed(change, job);
    });
    return all.map(({ input }, i) => {
      const job = inserted.get(input.id);
      return job && first[i] ? { job, created: true } : { job: job ?? existing.get(input.id)!, created: false };
    });
  }

  /** Claims the admitted jobs in one statement: each row written once, with its wake-up. */
  private async claimAll(q: Tx, change: StoreChange, jobs: readonly Job[], now: number): Promise<Claim[]> {
    if (jobs.length === 0) return [];
    const claimed = jobs.map((job) => {
      const next: Job = { ...job, state: "launching", attempt: job.attempt + 1, runAfter: null, version: job.version + 1, updatedAt: now };
      const attempt: Attempt = { jobId: job.id, attempt: next.attempt, target: job.target ?? UNCHOSEN_TARGET, key: attemptKey(job.id, next.attempt), handle: null, state: "launching", launchedAt: now, startedAt: null, endedAt: null, heartbeatAt: null, exitCode: null, outcome: null, reason: null, result: null, log: null, logLines: 0 };
      return { next, attempt, wake: wakeAt(next, attempt) };
    });
    const { values, p } = numbered();
    const rows = await q.all<JobRow & Record<string, unknown>>(
      `WITH c AS (SELECT * FROM unnest(${p(jobs.map((j) => j.id))}::text[], ${p(claimed.map((c) => c.wake))}::bigint[], ${p(claimed.map((c) => JSON.stringify({ target: c.next.target })))}::text[]) AS c(id, wake_at, event_data)),
       j AS (UPDATE jobs SET state = 'launching', attempt = jobs.attempt + 1, run_after = NULL, version = jobs.version + 1, updated_at = ${p(now)}, wake_at = c.wake_at
             FROM c WHERE jobs.id = c.id AND jobs.state = 'queued' RETURNING jobs.*, c.event_data),
       a AS (INSERT INTO attempts (job_id, attempt, target, key, handle, state, launched_at)
             SELECT id, attempt, COALESCE(target, ${p(UNCHOSEN_TARGET)}), id || ':' || attempt, NULL, 'launching', ${p(now)} FROM j),
       e AS (INSERT INTO events (job_id, kind, from_state, to_state, attempt, data, at)
             SELECT id, 'job.launching', 'queued', 'launching', attempt, event_data, ${p(now)} FROM j)
       SELECT * FROM j`,
      values,
    );
    // The rows are locked by this transaction (SKIP LOCKED above): every admitted job is
    // claimed; the claims keep the admission order.
    const byId = new Map(rows.map((row) => [row.id, toJob(row)]));
    return claimed.flatMap(({ next, attempt, wake }) => {
      const job = byId.get(next.id);
      if (!job) return [];
      changed(change, job);
      noteWake(change, wake);
      return [{ job, attempt }];
    });
  }

  /** The task types with queued jobs: a skip-scan of the claim index, one probe per type. */
  private async queuedTypes(q: Tx): Promise<string[]> {
    return (await q.all<{ type: string }>(QUEUED_TYPES)).map((r) => r.type);
  }

  private async patchAttempt(q: Tx, jobId: string, attempt: number, patch: AttemptPatch): Promise<Attempt | null> {
    const { values, p } = numbered();
    const set = assignments(patch, ATTEMPT_PATCH_COLUMNS, p);
    if (!set) return null;
    const row = await q.one<AttemptRow>(`UPDATE attempts SET ${set.slice(2)} WHERE job_id = ${p(jobId)} AND attempt = ${p(attempt)} RETURNING *`, values);
    return row ? toAttempt(row) : null;
  }

  private async selectAttempt(q: Tx, jobId: string, attempt: number): Promise<Attempt | null> {
    const row = await q.one<AttemptRow>("SELECT * FROM attempts WHERE job_id = $1 AND attempt = $2", [jobId, attempt]);
    return row ? toAttempt(row) : null;
  }

  private async setWake(q: Tx, job: Job, attempt: Attempt | null): Promise<void> {
    await q.all("UPDATE jobs SET wake_at = $1 WHERE id = $2", [wakeAt(job, attempt), job.id]);
  }

  private async insertEvent(q: Tx, jobId: string, e: Omit<JobEvent, "seq" | "jobId">): Promise<void> {
    await q.all("INSERT INTO events (job_id, kind, from_state, to_state, attempt, data, at) VALUES ($1, $2, $3, $4, $5, $6, $7)", [jobId, e.kind, e.from, e.to, e.attempt, JSON.stringify(e.data), e.at]);
  }

  private async insertEffects(q: Tx, change: StoreChange, jobId: string, effects: readonly EffectInput[], now: number): Promise<void> {
    for (const e of effects) await q.all("INSERT INTO effects (job_id, kind, payload, created_at, run_after, tries) VALUES ($1, $2, $3, $4, $5, 0)", [jobId, e.kind, JSON.stringify(e.payload), now, e.runAfter ?? now]);
    if (effects.length) change.effects = true;
  }

  /**
   * Gives committed events without a position the next positions, in the order of their
   * insert ids, one placer at a time (an advisory lock, in `blacktree_place_events`): a
   * transaction that commits later is placed later, so a sink reading past its cursor never
   * skips one. A placer under way is waited for rather than skipped: a drain that skipped
   * would read nothing new and sleep until its poll (the bench saw one-job p99 at the 500 ms
   * poll). Cheap when nothing waits (a partial index).
   *
   * The node's readers share placements: each status sink, the event stream and the job
   * history read the outbox after the same commit, and placing for each took the lock in
   * turn (4 placements a commit, queued one behind the other on the lock). A caller needs
   * a placement that begins after it called (one under way may have taken its snapshot
   * before the caller's events committed), so callers that come while one is under way share
   * the next one.
   */
  private placeEvents(): Promise<void> {
    if (!this.placing) {
      this.placing = this.read((q) => q.all("SELECT blacktree_place_events($1)", [PLACE_BATCH]))
        .then(() => undefined)
        .finally(() => (this.placing = null));
      return this.placing;
    }
    this.placingNext ??= this.placing
      .catch(() => undefined)
      .then(() => {
        this.placingNext = null;
        return this.placeEvents();
      });
    return this.placingNext;
  }

  // ---- plumbing ----

  private secretBox(): SecretBox {
    if (!this.secrets) throw blacktreeError("CONFIG_INVALID", "This store was opened without a secrets key and cannot hold job secrets");
    return this.secrets;
  }

  private async connect(): Promise<PoolClient> {
    if (this.closed) throw blacktreeError("STORE_UNAVAILABLE", "The job store is closed");
    try {
      return await this.pool.connect();
    } catch (err) {
      throw unavailable(err);
    }
  }

  private async read<T>(fn: (q: Tx) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      return await fn(txOf(client));
    } catch (err) {
      throw normalize(err);
    } finally {
      client.release();
    }
  }

  /**
   * One transaction, run again when it lost to a concurrent one; listeners hear what it
   * changed once it committed. `oneStatement`: `fn` sends a single statement, atomic by
   * itself, so BEGIN and COMMIT (two round trips) are left out.
   */
  private async write<T>(fn: (q: Tx, change: StoreChange, opened: unknown) => Promise<T>, { announce = true, oneStatement = false, opening = "BEGIN" } = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const change: StoreChange = { jobIds: [], states: [], effects: false, wakeAt: null };
      const client = await this.connect();
      let result: T;
      try {
        // `opening`: BEGIN and the transaction's first statements, in one round trip (no parameters).
        const opened = oneStatement ? null : await client.query(opening);
        result = await fn(txOf(client), change, opened);
        if (!oneStatement) await client.query("COMMIT");
      } catch (err) {
        if (!oneStatement) await client.query("ROLLBACK").catch(() => undefined);
        client.release();
        const code = (err as { code?: string }).code;
        if ((code === "40001" || code === "40P01") && attempt < TX_TRIES) continue;
        throw normalize(err);
      }
      client.release();
      if (announce && (change.jobIds.length || change.effects)) for (const listener of this.listeners) listener(change);
      return result;
    }
  }
}

/**
 * Names of prepared statements by their text: each connection parses and plans a statement
 * once, then only binds (parsing and planning were a large part of the server's CPU per job).
 * The texts are the store's own, so the set is small and bounded.
 */
const STATEMENT_NAMES = new Map<string, string>();

function prepared(text: string, values: unknown[]): { name: string; text: string; values: unknown[] } {
  let name = STATEMENT_NAMES.get(text);
  if (name === undefined) STATEMENT_NAMES.set(text, (name = `bt_${STATEMENT_NAMES.size + 1}`));
  return { name, text, values };
}

function txOf(client: PoolClient): Tx {
  return {
    async one<T>(sql: string, params: unknown[] = []) {
      return (await client.query(prepared(sql, params))).rows[0] as T | undefined;
    },
    async all<T>(sql: string, params: unknown[] = []) {
      return (await client.query(prepared(sql, params))).rows as T[];
    },
  };
}

function changed(change: StoreChange, job: Job): void {
  change.jobIds.push(job.id);
  change.states.push(job.state);
}

function toActive(row: JobRow & Record<string, unknown>): ActiveAttempt {
  return { job: toJob(row), attempt: toAttempt(unprefix<AttemptRow>(row, "a_")) };
}

/** An event's outbox position is its `seq` for readers (0 while it waits to be placed). */
function positioned(row: EventRow & { pos: number | null }): JobEvent {
  return { ...toEvent(row), seq: row.pos ?? 0 };
}

/** The parameters of one statement: `p(value)` adds a value and returns its `$n`. */
function numbered(): { values: unknown[]; p: (value: unknown) => string } {
  const values: unknown[] = [];
  return { values, p: (value) => `$${values.push(value)}` };
}

/** `, col = $n` for every field present in the patch. */
function assignments<P extends object>(patch: P, columns: Record<keyof P, [string, (v: unknown) => unknown]>, p: (value: unknown) => string): string {
  let sql = "";
  for (const field of Object.keys(columns) as (keyof P)[]) {
    const value = patch[field];
    if (value === undefined) continue;
    const [column, encode] = columns[field];
    sql += `, ${column} = ${p(encode(value))}`;
  }
  return sql;
}

/** The row as a patch leaves it (fields the patch leaves undefined keep their value), as the UPDATE writes it. */
function withPatch<T extends object>(row: T, patch: object): T {
  const out = { ...row } as Record<string, unknown>;
  for (const [field, value] of Object.entries(patch)) if (value !== undefined) out[field] = value;
  return out as T;
}

/** A caller's basis stands in for the first read: this job at the expected version, with its current attempt (or none yet). */
function usableBasis(id: string, req: TransitionRequest): boolean {
  const basis = req.basis;
  if (!basis || basis.job.id !== id || req.expect?.version === undefined || basis.job.version !== req.expect.version) return false;
  return basis.attempt === null ? basis.job.attempt === 0 : basis.attempt.jobId === id && basis.attempt.attempt === basis.job.attempt;
}

/** The attempt columns of a job row joined with its attempt (`a_` prefixed), for `attemptOf`. */
const PREFIXED_ATTEMPT = ATTEMPT_COLUMNS.map((c) => `a.${c} AS a_${c}`).join(", ");

function attemptOf(row: Record<string, unknown>): Attempt | null {
  return row.a_job_id === null || row.a_job_id === undefined ? null : toAttempt(unprefix<AttemptRow>(row, "a_"));
}

/** A CTE step inserting one outbox event (only when `onlyIf` holds, if given). */
function eventStep(p: (value: unknown) => string, jobId: string, e: Omit<JobEvent, "seq" | "jobId">, onlyIf?: string): string {
  return `e AS (INSERT INTO events (job_id, kind, from_state, to_state, attempt, data, at)
    SELECT ${p(jobId)}, ${p(e.kind)}, ${p(e.from)}::text, ${p(e.to)}::text, ${p(e.attempt)}::integer, ${p(JSON.stringify(e.data))}, ${p(e.at)}::bigint${onlyIf ? ` WHERE ${onlyIf}` : ""})`;
}

/** A CTE step inserting a decision's effects (only when `onlyIf` holds, if given). */
function effectsStep(p: (value: unknown) => string, jobId: string, effects: readonly EffectInput[], now: number, onlyIf?: string): string {
  return `f AS (INSERT INTO effects (job_id, kind, payload, created_at, run_after, tries)
    SELECT ${p(jobId)}, kind, payload, ${p(now)}, run_after, 0 FROM unnest(${p(effects.map((e) => e.kind))}::text[], ${p(effects.map((e) => JSON.stringify(e.payload)))}::text[], ${p(effects.map((e) => e.runAfter ?? now))}::bigint[]) AS x(kind, payload, run_after)${onlyIf ? ` WHERE ${onlyIf}` : ""})`;
}

const UNAVAILABLE_CODES = /^(08|53|57P0[123]|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN)/;

function unavailable(err: unknown): Error {
  return blacktreeError("STORE_UNAVAILABLE", `PostgreSQL: ${(err as Error).message}`, { code: (err as { code?: string }).code ?? null });
}

/** Connection and resource failures are the store being unavailable (retryable), not bugs. */
function normalize(err: unknown): unknown {
  const code = (err as { code?: string }).code;
  if (typeof code === "string" && UNAVAILABLE_CODES.test(code)) return unavailable(err);
  return err;
}
