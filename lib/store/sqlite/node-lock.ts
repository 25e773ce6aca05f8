import path from "node:path";
import Database from "better-sqlite3";
import { blacktreeError } from "../../errors";

/** Beside the database: held by the one node that owns the data directory. */
export const NODE_LOCK_FILE = "blacktree.lock";

/**
 * The embedded store belongs to one node: a second orchestrator process on the same data
 * directory would claim and publish beside the first without their limits or leases
 * knowing of each other. An exclusive SQLite lock on a file of its own is released by the
 * operating system when the process ends however it ends (kill -9 included), so a restart
 * never waits for a stale lock.
 */
export function lockDataDir(dataDir: string): { release(): void } {
  const file = path.join(dataDir, NODE_LOCK_FILE);
  const db = new Database(file, { timeout: 0 });
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") {
      throw blacktreeError("CONFIG_INVALID", `Another orchestrator node already uses the data directory ${dataDir} (the embedded SQLite store is one node's). Stop it, give this node its own DATA_DIR, or set DATABASE_URL to a PostgreSQL database shared by every node.`, { file });
    }
    throw err;
  }
  return { release: () => db.close() };
}
