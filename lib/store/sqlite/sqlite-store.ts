import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { blacktreeError } from "../../errors";
import { attemptKey, HOLDING_ATTEMPT_STATES } from "../../jobs/model";
import type { Attempt, AttemptState, Job, JobEvent, NewJob } from "../../jobs/model";
import { wakeAt } from "../../jobs/deadlines";
import { FINAL_STATES, assertTransition } from "../../jobs/states";
import type { JobState } from "../../jobs/states";
import { blockedScopes, countJob, emptyCounts, exceededScope } from "../../jobs/limits";
import type { ActiveCounts } from "../../jobs/limits";
import { lockDataDir } from "./node-lock";
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
  Encoder,
  encodeCursor,
  EventRow,
  holdAfter,
  JOB_PATCH_COLUMNS,
  JobRow,
  newJobShape,
  noteWake,
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

const BUSY_TIMEOUT_MS = 5000;
/** Attempt states that hold compute, as SQL. */
const HOLDING_SQL = HOLDING_ATTEMPT_STATES.map((s) => `'${s}'`).join(", ");

/**
 * The embedded dialect. better-sqlite3 is synchronous: every method runs one short
 * transaction to completion; writes take the write lock up front (BEGIN IMMEDIATE), so a
 * transaction never fails half-way on a lock upgrade when another process writes the file.
 */
export class SqliteJobStore implements JobStore {
  readonly dialect = "sqlite";
  readonly file: string;
  private readonly database: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private closed = false;
  /** Seals job secrets at rest; a store opened without one refuses to hold secrets. */
  private readonly secrets: SecretBox | null;
  private readonly listeners = new Set<(change: StoreChange) => void>();
  /** What the transaction under way changed, announced once it commits. */
  private pending: StoreChange | null = null;
  private readonly now: () => number;
  private readonly queued: Array<{ fn: () => unknown; resolve: (value: unknown) => void; reject: (err: unknown) => void }> = [];

  /** Held while this store is a node's own (see node-lock.ts). */
  private nodeLock: { release(): void } | null = null;

  /** `ownNode`: this store is a node's, and no other node may open the same data directory. */
  constructor(opts: { file: string; secrets?: SecretBox; clock?: () => number; ownNode?: boolean }) {
    this.file = opts.file;
    this.secrets = opts.secrets ?? null;
    this.now = opts.clock ?? Date.now;
    if (!isMemory(opts.file)) {
      fs.mkdirSync(path.dirname(path.resolve(opts.file)), { recursive: true });
      // Owner-only from the first byte: job data lives here. SQLite gives -wal and -shm the same mode.
      fs.closeSync(fs.openSync(opts.file, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600));
      if (opts.ownNode) this.nodeLock = lockDataDir(path.dirname(path.resolve(opts.file)));
    }
    this.database = guard(() => {
      const db = new Database(opts.file, { timeout: BUSY_TIMEOUT_MS });
      try {
        db.pragma("journal_mode = WAL");
        db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
        db.pragma("foreign_keys = ON");
        db.pragma("synchronous = NORMAL");
        return db;
      } catch (err) {
        db.close();
        throw err;
      }
    });
  }

  async migrate(): Promise<void> {
    await this.write(() => {
      this.db.exec(migrationsTableSql("sqlite"));
      const applied = new Set(this.db.prepare("SELECT version FROM schema_migrations").pluck().all() as number[]);
      const newest = Math.max(0, ...applied);
      if (newest > LATEST_SCHEMA_VERSION) {
        throw blacktreeError("CONFIG_INVALID", `The database schema is at version ${newest}, newer than this build knows (${LATEST_SCHEMA_VERSION})`, { file: this.file });
      }
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        for (const sql of migration.statements("sqlite")) this.db.exec(sql);
        this.db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(migration.version, migration.name, Date.now());
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.queued.length) this.flush(); // writes already asked for are not lost
    this.closed = true;
    this.statements.clear();
    this.database.close();
    this.nodeLock?.release();
  }

  async ping(): Promise<void> {
    this.read(() => this.stmt("SELECT 1").get());
  }

  async createJob(input: NewJob, now = this.now()): Promise<{ job: Job; created: boolean }> {
    checkInitial(input);
    return this.write(() => this.insertJob(input, now));
  }

  async createJobs(inputs: NewJob[], now = this.now()): Promise<Array<{ job: Job; created: boolean }>> {
    inputs.forEach(checkInitial);
    if (inputs.length === 0) return [];
    return this.write(() => inputs.map((input) => this.insertJob(input, now)));
  }

  async getJob(id: string): Promise<Job | null> {
    return this.read(() => this.selectJob(id));
  }

  async listJobs(filter: JobFilter): Promise<{ items: Job[]; nextCursor: string | null }> {
    const limit = pageSize(filter.limit);
    const after = filter.cursor === undefined ? null : decodeCursor(filter.cursor);
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, ...params: unknown[]) => {
      where.push(sql);
      values.push(...params);
    };
    if (filter.state !== undefined) add("state = ?", filter.state);
    if (filter.type !== undefined) add("type = ?", filter.type);
    if (filter.deploymentId !== undefined) add("deployment_id = ?", filter.deploymentId);
    if (filter.submittedBy !== undefined) add("submitted_by = ?", filter.submittedBy);
    // Keyset: strictly after the last row of the previous page in (created_at, id) order.
    if (after) add("(created_at < ? OR (created_at = ? AND id < ?))", after.createdAt, after.createdAt, after.id);
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY created_at DESC, id DESC LIMIT ?`;
    // One row more than the page tells whether another page exists.
    const rows = this.read(() => this.stmt(sql).all(...values, limit + 1) as JobRow[]);
    const items = rows.slice(0, limit).map(toJob);
    const nextCursor = rows.length > limit ? encodeCursor(items[items.length - 1]) : null;
    return { items, nextCursor };
  }

  async jobsInStates(states: readonly JobState[], limit?: number): Promise<Job[]> {
    if (states.length === 0) return [];
    const limitSql = limit === undefined ? "" : `LIMIT ${Math.max(0, Math.trunc(limit))}`;
    const sql = `SELECT * FROM jobs WHERE state IN (${placeholders(states.length)}) ORDER BY created_at, id ${limitSql}`;
    return this.read(() => (this.stmt(sql).all(...states) as JobRow[]).map(toJob));
  }

  async countByState(): Promise<Array<{ state: JobState; type: string; target: string | null; count: number }>> {
    const sql = "SELECT state, type, target, COUNT(*) AS count FROM jobs GROUP BY state, type, target ORDER BY state, type, target";
    const rows = this.read(() => this.stmt(sql).all() as Array<{ state: string; type: string; target: string | null; count: number }>);
    return rows.map((r) => ({ state: r.state as JobState, type: r.type, target: r.target, count: Number(r.count) }));
  }

  async transition(id: string, req: TransitionRequest): Promise<Job | null> {
    const from: readonly JobState[] = typeof req.from === "string" ? [req.from] : req.from;
    // A forbidden edge is a bug in the caller, whatever state the job happens to be in.
    for (const state of from) assertTransition(state, req.to);
    return this.write(() => {
      const now = req.now ?? this.now();
      const current = this.stmt("SELECT state, attempt, version FROM jobs WHERE id = ?").get(id) as { state: JobState; attempt: number; version: number } | undefined;
      if (current === undefined || !from.includes(current.state)) return null;
      if (req.expect?.attempt !== undefined && req.expect.attempt !== current.attempt) return null;
      if (req.expect?.version !== undefined && req.expect.version !== current.version) return null;
      const patch = assignments(req.patch ?? {}, JOB_PATCH_COLUMNS);
      const row = this.stmt(
        `UPDATE jobs SET state = ?, version = version + 1, updated_at = ?${patch.sql}
         WHERE id = ? AND version = ? RETURNING *`,
      ).get(req.to, now, ...patch.values, id, current.version) as JobRow | undefined;
      if (!row) return null;
      const job = toJob(row);
      // A job that never launched has no attempt to change.
      const attemptPatch = holdAfter(current.state, req.to, req.attempt, now);
      const attempt = job.attempt > 0 ? (attemptPatch ? this.patchAttempt(id, job.attempt, attemptPatch) : null) ?? this.selectAttempt(id, job.attempt) : null;
      this.setWake(job, attempt);
      const final = FINAL_STATES.includes(req.to);
      // Secrets die with the job, in the same transaction: a crash after a final transition leaves none behind.
      if (final) this.stmt("DELETE FROM job_secrets WHERE job_id = ?").run(id);
      this.insertEvent(id, {
        kind: req.event?.kind ?? `job.${req.to}`,
        from: current.state,
        to: req.to,
        attempt: job.attempt || null,
        // A final event carries what the job ended with, so what is published from it never reads a later state.
        data: { ...(req.event?.data ?? {}), ...(final ? { snapshot: snapshotOf(job) } : {}) },
        at: now,
      });
      this.insertEffects(id, req.effects ?? [], now);
      this.changed(job);
      return job;
    });
  }

  async claimJobs(req: ClaimRequest): Promise<Claim[]> {
    if (req.max <= 0) return [];
    return this.write(() => {
      const counts = this.heldCounts();
      const claims: Claim[] = [];
      // Scopes at their limit are left out before anything is read: a blocked type is not
      // walked at all, blocked targets and keys are filtered in the query. So jobs blocked
      // by a limit never hide a claimable job behind them, however deep the queue. A round
      // ends when a claim fills a scope; the next round leaves that scope out too.
      for (let round = 0; claims.length < req.max && round < 1000; round++) {
        if (req.limits.global !== undefined && counts.global >= req.limits.global) break;
        const blocked = blockedScopes(counts, req.limits);
        const want = req.max - claims.length;
        const types = this.queuedTypes().filter((t) => !blocked.types.includes(t));
        const candidates = types
          .flatMap((type) =>
            this.stmt(
              `SELECT *, rowid AS stored FROM jobs WHERE state = 'queued' AND type = ? AND (run_after IS NULL OR run_after <= ?)
                 AND (target IS NULL OR target NOT IN (SELECT value FROM json_each(?)))
                 AND (concurrency_key IS NULL OR concurrency_key NOT IN (SELECT value FROM json_each(?)))
               ORDER BY priority DESC, created_at, rowid LIMIT ?`,
            ).all(type, req.now, JSON.stringify(blocked.targets), JSON.stringify(blocked.keys), want) as Array<JobRow & { stored: number }>,
          )
          .sort(claimOrder)
          .slice(0, want)
          .map(toJob);
        let filled = false;
        for (const candidate of candidates) {
          if (exceededScope(counts, candidate, req.limits) !== null) {
            filled = true; // a claim of this round filled its scope
            continue;
          }
          claims.push(this.claimOne(candidate, req.now));
          countJob(counts, candidate);
        }
        if (!filled) break;
      }
      return claims;
    });
  }

  /** The task types with queued jobs: a skip-scan of the claim index, one probe per type. */
  private queuedTypes(): string[] {
    return this.stmt(
      `WITH RECURSIVE t(type) AS (
         SELECT (SELECT MIN(type) FROM jobs WHERE state = 'queued')
         UNION ALL
         SELECT (SELECT MIN(type) FROM jobs WHERE state = 'queued' AND type > t.type) FROM t WHERE t.type IS NOT NULL
       ) SELECT type FROM t WHERE type IS NOT NULL`,
    ).pluck().all() as string[];
  }

  async getAttempts(jobId: string): Promise<Attempt[]> {
    return this.read(() => (this.stmt("SELECT * FROM attempts WHERE job_id = ? ORDER BY attempt").all(jobId) as AttemptRow[]).map(toAttempt));
  }

  async getAttempt(jobId: string, attempt: number): Promise<Attempt | null> {
    return this.read(() => this.selectAttempt(jobId, attempt));
  }

  async getAttemptsOf(refs: ReadonlyArray<{ jobId: string; attempt: number }>): Promise<Attempt[]> {
    return this.read(() => refs.flatMap(({ jobId, attempt }) => this.selectAttempt(jobId, attempt) ?? []));
  }

  async updateAttempt(
    jobId: string,
    attempt: number,
    patch: AttemptPatch,
    opts: { event?: EventInput; onlyIfState?: readonly AttemptState[] } = {},
  ): Promise<Attempt | null> {
    return this.write(() => {
      const current = this.selectAttempt(jobId, attempt);
      if (!current) return null;
      if (opts.onlyIfState && !opts.onlyIfState.includes(current.state)) return null;
      const updated = this.patchAttempt(jobId, attempt, patch) ?? current;
      // Heartbeats and starts move the job's deadlines.
      if (patch.heartbeatAt !== undefined || patch.startedAt !== undefined) {
        const job = this.selectJob(jobId);
        if (job && job.attempt === attempt) this.setWake(job, updated);
      }
      if (opts.event) {
        this.insertEvent(jobId, { kind: opts.event.kind ?? "attempt.updated", from: null, to: null, attempt, data: opts.event.data ?? {}, at: this.now() });
      }
      if (patch.state !== undefined && this.pending) this.pending.jobIds.push(jobId);
      return updated;
    });
  }

  async activeAttempts(limit = 100_000): Promise<ActiveAttempt[]> {
    const sql = `SELECT j.*, ${ATTEMPT_COLUMNS.map((c) => `a.${c} AS a_${c}`).join(", ")}
      FROM attempts a JOIN jobs j ON j.id = a.job_id
      WHERE a.state IN (${HOLDING_SQL}) ORDER BY a.launched_at, a.job_id, a.attempt LIMIT ?`;
    const rows = this.read(() => this.stmt(sql).all(Math.max(0, Math.trunc(limit))) as Array<JobRow & Record<string, unknown>>);
    return rows.map(toActive);
  }

  async attemptByKey(key: string): Promise<ActiveAttempt | null> {
    const sql = `SELECT j.*, ${ATTEMPT_COLUMNS.map((c) => `a.${c} AS a_${c}`).join(", ")}
      FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.key = ?`;
    const row = this.read(() => this.stmt(sql).get(key) as (JobRow & Record<string, unknown>) | undefined);
    return row ? toActive(row) : null;
  }

  async dueJobs(now: number, limit: number): Promise<Job[]> {
    const rows = this.read(() => this.stmt("SELECT * FROM jobs WHERE wake_at <= ? ORDER BY wake_at LIMIT ?").all(now, Math.max(0, Math.trunc(limit))) as JobRow[]);
    return rows.map(toJob);
  }

  async refreshWake(id: string): Promise<void> {
    await this.write(() => {
      const job = this.selectJob(id);
      if (job) this.setWake(job, job.attempt > 0 ? this.selectAttempt(id, job.attempt) : null);
    });
  }

  async leaseEffects(now: number, limit: number, leaseMs: number): Promise<Effect[]> {
    return this.write(() => {
      const rows = this.stmt(
        `UPDATE effects SET leased_until = ? WHERE id IN (
           SELECT id FROM effects WHERE done_at IS NULL AND run_after <= ? AND (leased_until IS NULL OR leased_until <= ?)
           ORDER BY id LIMIT ?) RETURNING *`,
      ).all(now + leaseMs, now, now, Math.max(0, Math.trunc(limit))) as EffectRow[];
      return rows.map(toEffect).sort((x, y) => x.id - y.id);
    });
  }

  async completeEffect(id: number, now = this.now()): Promise<void> {
    await this.write(() => this.stmt("UPDATE effects SET done_at = ?, leased_until = NULL WHERE id = ?").run(now, id));
  }

  async failEffect(id: number, error: string, retryAt: number, countsAsTry = true): Promise<void> {
    await this.write(() => this.stmt("UPDATE effects SET tries = tries + ?, last_error = ?, run_after = ?, leased_until = NULL WHERE id = ?").run(countsAsTry ? 1 : 0, error.slice(0, 1000), retryAt, id));
  }

  async nextWake(): Promise<number | null> {
    return this.read(() => (this.stmt("SELECT MIN(wake_at) FROM jobs WHERE wake_at IS NOT NULL").pluck().get() as number | null) ?? null);
  }

  async addEffects(jobId: string, effects: EffectInput[]): Promise<void> {
    await this.write(() => this.insertEffects(jobId, effects, this.now()));
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.write(() => {
      const now = this.now();
      const row = this.stmt(
        `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE leases.holder = excluded.holder OR leases.expires_at <= ?
         RETURNING holder`,
      ).get(name, holder, now + ttlMs, now) as { holder: string } | undefined;
      return row?.holder === holder;
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.write(() => this.stmt("DELETE FROM leases WHERE name = ? AND holder = ?").run(name, holder));
  }

  onCommit(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async getSecrets(jobId: string): Promise<Record<string, string>> {
    const rows = this.read(() => this.stmt("SELECT name, value FROM job_secrets WHERE job_id = ? ORDER BY name").all(jobId) as Array<{ name: string; value: string }>);
    return Object.fromEntries(rows.map((r) => [r.name, this.secretBox().open(r.value, secretContext(jobId, r.name))]));
  }

  async takeSecrets(jobId: string, attempt: number, key: string): Promise<Record<string, string> | null> {
    return this.write(() => {
      const live = this.stmt(
        `SELECT 1 FROM jobs j JOIN attempts a ON a.job_id = j.id AND a.attempt = j.attempt
         WHERE j.id = ? AND j.attempt = ? AND j.state IN ('launching', 'running') AND a.state IN ('launching', 'running') AND a.key = ?`,
      ).get(jobId, attempt, key);
      if (!live) return null;
      const fetched = this.stmt(
        "SELECT 1 FROM events WHERE job_id = ? AND attempt = ? AND kind = 'attempt.secrets_fetched' AND json_extract(data, '$.key') = ?",
      ).get(jobId, attempt, key);
      if (fetched) return null;
      const rows = this.stmt("SELECT name, value FROM job_secrets WHERE job_id = ? ORDER BY name").all(jobId) as Array<{ name: string; value: string }>;
      const secrets = Object.fromEntries(rows.map((r) => [r.name, this.secretBox().open(r.value, secretContext(jobId, r.name))]));
      this.insertEvent(jobId, { kind: "attempt.secrets_fetched", from: null, to: null, attempt, data: { names: Object.keys(secrets), key }, at: this.now() });
      return secrets;
    });
  }

  private secretBox(): SecretBox {
    if (!this.secrets) throw blacktreeError("CONFIG_INVALID", "This store was opened without a secrets key and cannot hold job secrets");
    return this.secrets;
  }

  async getEvents(jobId: string): Promise<JobEvent[]> {
    return this.read(() => (this.stmt("SELECT * FROM events WHERE job_id = ? ORDER BY seq").all(jobId) as EventRow[]).map(toEvent));
  }

  async readEvents(afterSeq: number, limit: number): Promise<JobEvent[]> {
    // SQLite reads a negative LIMIT as "no limit".
    const n = Math.max(0, Math.trunc(limit));
    return this.read(() => (this.stmt("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?").all(afterSeq, n) as EventRow[]).map(toEvent));
  }

  async lastEventSeq(): Promise<number> {
    return this.read(() => (this.stmt("SELECT COALESCE(MAX(seq), 0) AS seq FROM events").get() as { seq: number }).seq);
  }

  async getCursor(sink: string): Promise<number> {
    return this.read(() => (this.stmt("SELECT seq FROM sink_cursors WHERE sink = ?").pluck().get(sink) as number | undefined) ?? 0);
  }

  async setCursor(sink: string, seq: number): Promise<void> {
    await this.write(() =>
      this.stmt("INSERT INTO sink_cursors (sink, seq) VALUES (?, ?) ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq").run(sink, seq),
    );
  }

  async addDeadLetter(letter: NewDeadLetter): Promise<{ letter: DeadLetter; created: boolean }> {
    return this.write(() => {
      const existing = this.stmt("SELECT * FROM dead_letters WHERE id = ?").get(letter.id) as DeadLetterRow | undefined;
      if (existing) return { letter: toDeadLetter(existing), created: false };
      const row = this.stmt(
        `INSERT INTO dead_letters (id, source, reason, detail, body, properties, received_at, replayed_at, replay_count)
         VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0) RETURNING *`,
      ).get(letter.id, letter.source, letter.reason, letter.detail, letter.body, JSON.stringify(letter.properties), letter.receivedAt) as DeadLetterRow;
      return { letter: toDeadLetter(row), created: true };
    });
  }

  async getDeadLetter(id: string): Promise<DeadLetter | null> {
    const row = this.read(() => this.stmt("SELECT * FROM dead_letters WHERE id = ?").get(id) as DeadLetterRow | undefined);
    return row ? toDeadLetter(row) : null;
  }

  async listDeadLetters(limit?: number): Promise<DeadLetter[]> {
    const rows = this.read(() => this.stmt("SELECT * FROM dead_letters ORDER BY received_at DESC, id DESC LIMIT ?").all(pageSize(limit)) as DeadLetterRow[]);
    return rows.map(toDeadLetter);
  }

  async markDeadLetterReplayed(id: string, now = Date.now()): Promise<DeadLetter | null> {
    const row = await this.write(
      () => this.stmt("UPDATE dead_letters SET replayed_at = ?, replay_count = replay_count + 1 WHERE id = ? RETURNING *").get(now, id) as DeadLetterRow | undefined,
    );
    return row ? toDeadLetter(row) : null;
  }

  // ---- inside transactions ----

  private insertJob(input: NewJob, now: number): { job: Job; created: boolean } {
    // The wake-up is written with the row: it depends only on what is inserted.
    const wake = wakeAt(newJobShape(input, now), null);
    noteWake(this.pending, wake);
    const row = this.stmt(
      `INSERT INTO jobs (id, type, state, deployment_id, priority, target, concurrency_key, params, timeouts, retry,
         attempt, source, parent_id, created_at, updated_at, run_after, deadline, result, error, version, submitted_by, wake_at, trace_context)
       VALUES (@id, @type, @state, @deploymentId, @priority, @target, @concurrencyKey, @params, @timeouts, @retry,
         0, @source, @parentId, @now, @now, @runAfter, @deadline, NULL, @error, 1, @submittedBy, @wake, @traceContext)
       ON CONFLICT (id) DO NOTHING RETURNING *`,
    ).get({
      wake,
      id: input.id,
      type: input.type,
      state: input.state,
      deploymentId: input.deploymentId,
      priority: input.priority,
      target: input.target,
      concurrencyKey: input.concurrencyKey,
      params: JSON.stringify(input.params),
      timeouts: JSON.stringify(input.timeouts),
      retry: JSON.stringify(input.retry),
      source: input.source,
      parentId: input.parentId,
      now,
      runAfter: input.runAfter,
      deadline: input.deadline,
      error: toJson(input.error),
      submittedBy: input.submittedBy ?? null,
      traceContext: input.traceContext ?? null,
    }) as JobRow | undefined;
    if (!row) return { job: this.selectJob(input.id)!, created: false };
    const job = toJob(row);
    const insertSecret = this.stmt("INSERT INTO job_secrets (job_id, name, value) VALUES (?, ?, ?)");
    for (const [name, value] of Object.entries(input.secrets)) insertSecret.run(input.id, name, this.secretBox().seal(value, secretContext(input.id, name)));
    this.insertEvent(input.id, {
      kind: input.state === "rejected" ? "job.rejected" : "job.created",
      from: null,
      to: input.state,
      attempt: null,
      data: { type: input.type, deploymentId: input.deploymentId, source: input.source, ...(input.traceContext ? { traceContext: input.traceContext } : {}), ...(input.state === "rejected" ? { snapshot: snapshotOf(job) } : {}) },
      at: now,
    });
    this.insertEffects(input.id, input.effects ?? [], now);
    this.changed(job);
    return { job, created: true };
  }

  /** Stores the job's next wake-up (derived from its state, in one place: lib/jobs/deadlines). */
  private setWake(job: Job, attempt: Attempt | null): Job {
    const wake = wakeAt(job, attempt);
    this.stmt("UPDATE jobs SET wake_at = ? WHERE id = ?").run(wake, job.id);
    noteWake(this.pending, wake);
    return job;
  }

  private insertEffects(jobId: string, effects: readonly EffectInput[], now: number): void {
    if (effects.length === 0) return;
    const insert = this.stmt("INSERT INTO effects (job_id, kind, payload, created_at, run_after, tries) VALUES (?, ?, ?, ?, ?, 0)");
    for (const e of effects) insert.run(jobId, e.kind, JSON.stringify(e.payload), now, e.runAfter ?? now);
    if (this.pending) this.pending.effects = true;
  }

  private changed(job: Job): void {
    if (!this.pending) return;
    this.pending.jobIds.push(job.id);
    this.pending.states.push(job.state);
  }

  private claimOne(job: Job, now: number): Claim {
    const n = job.attempt + 1;
    const attemptRow = this.stmt(
      `INSERT INTO attempts (job_id, attempt, target, key, handle, state, launched_at)
       VALUES (?, ?, ?, ?, NULL, 'launching', ?) RETURNING *`,
    ).get(job.id, n, job.target ?? UNCHOSEN_TARGET, attemptKey(job.id, n), now) as AttemptRow;
    const attempt = toAttempt(attemptRow);
    // The job as it is about to be, for its wake-up: one UPDATE writes both.
    const wake = wakeAt({ ...job, state: "launching", attempt: n, runAfter: null, updatedAt: now }, attempt);
    noteWake(this.pending, wake);
    const row = this.stmt(
      `UPDATE jobs SET state = 'launching', attempt = ?, run_after = NULL, version = version + 1, updated_at = ?, wake_at = ?
       WHERE id = ? AND state = 'queued' RETURNING *`,
    ).get(n, now, wake, job.id) as JobRow;
    const claimed = toJob(row);
    this.insertEvent(claimed.id, {
      kind: "job.launching",
      from: "queued",
      to: "launching",
      attempt: claimed.attempt,
      data: { target: claimed.target },
      at: now,
    });
    this.changed(claimed);
    return { job: claimed, attempt };
  }

  /**
   * What holds compute now: attempts launching, running, or stopping (a cancelled or
   * timed-out worker keeps its slot until its target confirms the stop). An attempt's own
   * target counts, since that is where the work runs (after a fallback, not the job's).
   */
  private heldCounts(): ActiveCounts {
    const rows = this.stmt(
      `SELECT j.type, a.target, j.concurrency_key, COUNT(*) AS n
       FROM attempts a JOIN jobs j ON j.id = a.job_id
       WHERE a.state IN (${HOLDING_SQL}) GROUP BY j.type, a.target, j.concurrency_key`,
    ).all() as Array<{ type: string; target: string; concurrency_key: string | null; n: number }>;
    const counts = emptyCounts();
    for (const r of rows) countJob(counts, { type: r.type, target: r.target || null, concurrencyKey: r.concurrency_key }, Number(r.n));
    return counts;
  }

  /** Returns the updated attempt, or null when the patch changes nothing. */
  private patchAttempt(jobId: string, attempt: number, patch: AttemptPatch): Attempt | null {
    const set = assignments(patch, ATTEMPT_PATCH_COLUMNS);
    if (!set.values.length) return null;
    const row = this.stmt(`UPDATE attempts SET ${set.sql.slice(2)} WHERE job_id = ? AND attempt = ? RETURNING *`).get(...set.values, jobId, attempt) as AttemptRow | undefined;
    return row ? toAttempt(row) : null;
  }

  private insertEvent(jobId: string, e: Omit<JobEvent, "seq" | "jobId">): void {
    this.stmt("INSERT INTO events (job_id, kind, from_state, to_state, attempt, data, at) VALUES (?, ?, ?, ?, ?, ?, ?)").run(
      jobId,
      e.kind,
      e.from,
      e.to,
      e.attempt,
      JSON.stringify(e.data),
      e.at,
    );
  }

  private selectJob(id: string): Job | null {
    const row = this.stmt("SELECT * FROM jobs WHERE id = ?").get(id) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  private selectAttempt(jobId: string, attempt: number): Attempt | null {
    const row = this.stmt("SELECT * FROM attempts WHERE job_id = ? AND attempt = ?").get(jobId, attempt) as AttemptRow | undefined;
    return row ? toAttempt(row) : null;
  }

  // ---- plumbing ----

  private get db(): Database.Database {
    if (this.closed) throw blacktreeError("STORE_UNAVAILABLE", "The job store is closed");
    return this.database;
  }

  /** Prepared statements are reused; dynamic SQL has few shapes, so the cache stays small. */
  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private read<T>(fn: () => T): T {
    return guard(fn);
  }

  /**
   * Group commit: writes asked for in the same turn of the event loop run in one IMMEDIATE
   * transaction, each in its own savepoint (one failing rolls back only itself). A commit
   * costs far more than a row, so under load this multiplies write throughput; alone, a
   * write waits for nothing but the end of the current turn. Once the group commits,
   * listeners hear what it changed, then each caller gets its result.
   */
  private write<T>(fn: () => T): Promise<T> {
    if (this.pending) return Promise.resolve(fn()); // inside the group under way
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.queued.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const ops = this.queued.splice(0);
    const change: StoreChange = { jobIds: [], states: [], effects: false, wakeAt: null };
    const outcomes: Array<{ ok: boolean; value: unknown }> = [];
    this.pending = change;
    try {
      guard(() =>
        this.db.transaction(() => {
          for (const op of ops) {
            try {
              outcomes.push({ ok: true, value: this.db.transaction(op.fn)() });
            } catch (err) {
              outcomes.push({ ok: false, value: err });
            }
          }
        }).immediate(),
      );
    } catch (err) {
      for (const op of ops) op.reject(err);
      return;
    } finally {
      this.pending = null;
    }
    if (change.jobIds.length || change.effects) for (const listener of this.listeners) listener(change);
    ops.forEach((op, i) => {
      const outcome = outcomes[i];
      if (outcome.ok) op.resolve(outcome.value);
      else op.reject(normalizeError(outcome.value));
    });
  }
}

/** `, col = ?` for every field present in the patch (undefined means "leave as is"). */
function assignments<P extends object>(patch: P, columns: Record<keyof P, [string, Encoder]>): { sql: string; values: unknown[] } {
  let sql = "";
  const values: unknown[] = [];
  for (const field of Object.keys(columns) as (keyof P)[]) {
    const value = patch[field];
    if (value === undefined) continue;
    const [column, encode] = columns[field];
    sql += `, ${column} = ?`;
    values.push(encode(value));
  }
  return { sql, values };
}
function placeholders(n: number): string {
  return Array.from({ length: n }, () => "?").join(", ");
}
function toActive(row: JobRow & Record<string, unknown>): ActiveAttempt {
  return { job: toJob(row), attempt: toAttempt(unprefix<AttemptRow>(row, "a_")) };
}
function isMemory(file: string): boolean {
  return file === ":memory:" || file === "";
}

/** Lock timeouts and I/O failures are the store being unavailable (retryable), not bugs. */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw normalizeError(err);
  }
}

function normalizeError(err: unknown): unknown {
  if (err instanceof Database.SqliteError && /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|READONLY|PROTOCOL)/.test(err.code)) {
    return blacktreeError("STORE_UNAVAILABLE", `SQLite: ${err.message}`, { code: err.code });
  }
  return err;
}

