/**
 * The bench's own PostgreSQL databases: the server (127.0.0.1:5432, trust auth) is shared
 * with other engineers' tests, so the bench creates databases named
 * `blacktree_bench_<pid>_<what>`, reads statistics of those only, and drops every one it
 * created at the end (also after a failure or a signal: `dropBenchDatabases`).
 */
import { Client } from "pg";
import { log, processCpuMs } from "./stats";

/** A maintenance connection on the server; the bench's databases are created and dropped from it. */
export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const created = new Set<string>();

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: PG_ADMIN_URL, application_name: "blacktree-bench-admin" });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** `CREATE DATABASE blacktree_bench_<pid>_<what>`: empty, the bench's own. */
export async function createBenchDatabase(what: string): Promise<BenchDatabase> {
  const name = `blacktree_bench_${process.pid}_${what}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  await admin(async (c) => {
    // A database of this name can only be a leftover of this very pid (a run killed with SIGKILL).
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  created.add(name);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => dropDatabase(name) };
}

async function dropDatabase(name: string): Promise<void> {
  // WITH (FORCE) ends the connections to this database only.
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  created.delete(name);
}

/** Drops every database this run created; reports, never throws. */
export async function dropBenchDatabases(): Promise<void> {
  for (const name of [...created]) {
    try {
      await dropDatabase(name);
      log("✅", `dropped database ${name}`);
    } catch (err) {
      log("⚠️", `could not drop database ${name}: ${(err as Error).message}`);
    }
  }
}

/** Counters of one database (pg_stat_database) and of the server's WAL, read together. */
export interface DbCounters {
  at: number;
  commits: number;
  rollbacks: number;
  /** Server-wide: every database's WAL, other engineers' included. */
  walBytes: number;
  walSyncs: number;
}

export async function dbCounters(c: Client, db: string): Promise<DbCounters> {
  const { rows } = await c.query(
    `SELECT d.xact_commit::bigint AS commits, d.xact_rollback::bigint AS rollbacks,
            pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS wal_bytes, w.wal_sync::bigint AS wal_syncs
     FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = $1`,
    [db],
  );
  const r = rows[0];
  if (!r) throw new Error(`no pg_stat_database row for ${db}`);
  return { at: performance.now(), commits: Number(r.commits), rollbacks: Number(r.rollbacks), walBytes: Number(r.wal_bytes), walSyncs: Number(r.wal_syncs) };
}

/** A statistics connection (to the maintenance database, so it adds nothing to the counted one). */
export async function statsClient(): Promise<Client> {
  const c = new Client({ connectionString: PG_ADMIN_URL, application_name: "blacktree-bench-stats" });
  await c.connect();
  return c;
}

/** CPU ms of every server process serving `db` (its backends), by pid. */
export async function backendCpu(c: Client, db: string): Promise<Map<number, number>> {
  const { rows } = await c.query("SELECT pid FROM pg_stat_activity WHERE datname = $1", [db]);
  return new Map(rows.map((r) => [Number(r.pid), processCpuMs(Number(r.pid))]));
}

/** CPU ms the backends spent between two readings (a backend new in `after` counts from 0). */
export function backendCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, cpu] of after) ms += cpu - (before.get(pid) ?? 0);
  return ms;
}
