/**
 * One claimer process of the multi-process claim test: loops `claimJobs` on a shared
 * store (STORE_FILE: SQLite, or DATABASE_URL: PostgreSQL), holds each claimed job for a short random time, ends it (`succeeded`),
 * and when nothing is left prints the ids it claimed as one JSON line.
 *
 * env: STORE_FILE or DATABASE_URL, LIMITS (JSON), MAX_PER_CLAIM, HOLD_MS (upper bound of the random hold)
 * stdin: waits for one line before it starts, so that all claimers start together.
 */
import { PostgresJobStore } from "../../lib/store/postgres/postgres-store";
import { SqliteJobStore } from "../../lib/store/sqlite/sqlite-store";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const store = process.env.DATABASE_URL ? new PostgresJobStore({ url: process.env.DATABASE_URL }) : new SqliteJobStore({ file: process.env.STORE_FILE! });
  const limits = JSON.parse(process.env.LIMITS!);
  const max = Number(process.env.MAX_PER_CLAIM ?? 3);
  const holdMs = Number(process.env.HOLD_MS ?? 15);
  process.stdout.write("ready\n");
  await new Promise((resolve) => process.stdin.once("data", resolve));

  const claimed: string[] = [];
  const holding = new Set<Promise<void>>();
  const end = async (id: string) => {
    await sleep(Math.floor(Math.random() * holdMs));
    const now = Date.now();
    const done = await store.transition(id, {
      from: "launching",
      to: "succeeded",
      attempt: { state: "exited", endedAt: now, exitCode: 0, outcome: "SUCCEEDED", reason: "claim test" },
      now,
    });
    if (!done) throw new Error(`job ${id} was not launching when its claimer ended it`);
  };
  for (;;) {
    const claims = await store.claimJobs({ now: Date.now(), limits, max });
    for (const c of claims) {
      claimed.push(c.job.id);
      const p: Promise<void> = end(c.job.id).finally(() => holding.delete(p));
      holding.add(p);
    }
    if (claims.length > 0) continue;
    if (holding.size === 0) {
      const queued = (await store.countByState()).filter((c) => c.state === "queued").reduce((n, c) => n + c.count, 0);
      if (queued === 0) break;
    }
    // Nothing claimable now: let some holds end (ours or another process's) before trying again.
    await sleep(2 + Math.floor(Math.random() * 6));
  }
  await Promise.all(holding);
  await store.close();
  process.stdout.write(JSON.stringify(claimed) + "\n");
  process.stdin.destroy();
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err));
  process.exit(1);
});
