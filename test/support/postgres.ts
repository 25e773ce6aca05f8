import { randomUUID } from "node:crypto";
import { Client } from "pg";

/** The shared PostgreSQL server of the machine (trust auth); tests make databases of their own on it. */
export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * A database of the test's own (the server is shared with other engineers' tests): created
 * empty, dropped with its connections (`WITH (FORCE)` ends only connections to it).
 */
export async function createDatabase(prefix: string): Promise<TestDatabase> {
  const name = `blacktree_${prefix}_${process.pid}_${randomUUID().slice(0, 8)}`.replace(/[^a-z0-9_]/g, "_");
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}
