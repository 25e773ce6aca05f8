import path from "node:path";
import { blacktreeError } from "../errors";
import type { JobStore } from "./job-store";
import type { SecretBox } from "../secrets/secret-box";
import { PostgresJobStore } from "./postgres/postgres-store";
import { SqliteJobStore } from "./sqlite/sqlite-store";

export type { JobStore } from "./job-store";
export { SqliteJobStore } from "./sqlite/sqlite-store";
export { PostgresJobStore } from "./postgres/postgres-store";

export const SQLITE_FILE_NAME = "blacktree.db";

/**
 * Picks the dialect: PostgreSQL when a database URL is set, else SQLite under the data
 * directory. The caller runs `migrate()` before use.
 */
export function createStore(opts: { databaseUrl?: string; poolSize?: number; dataDir: string; secrets: SecretBox; ownNode?: boolean }): JobStore {
  const url = opts.databaseUrl?.trim();
  if (!url) return new SqliteJobStore({ file: path.join(opts.dataDir, SQLITE_FILE_NAME), secrets: opts.secrets, ownNode: opts.ownNode });
  if (/^postgres(ql)?:\/\//i.test(url)) return new PostgresJobStore({ url, secrets: opts.secrets, poolSize: opts.poolSize });
  throw blacktreeError("CONFIG_INVALID", "DATABASE_URL must be a postgres:// or postgresql:// URL", { fields: [{ field: "DATABASE_URL", message: "must start with postgres:// or postgresql://" }] });
}
