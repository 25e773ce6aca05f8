import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import type { Limits } from "../../lib/jobs/limits";
import { createStore } from "../../lib/store";
import type { JobStore } from "../../lib/store/job-store";
import { SqliteJobStore } from "../../lib/store/sqlite/sqlite-store";
import { SecretBox } from "../../lib/secrets/secret-box";
import { storeConformance } from "./store-conformance";
import { newJob } from "../support/jobs";

const T0 = 1_700_000_000_000;
/** A fixed test key: stores reopened on the same file open the same secrets. */
const secrets = new SecretBox(Buffer.alloc(32, 7));
const root = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-store-"));
let files = 0;

/** A fresh database in a directory that does not exist yet. */
function freshFile(): string {
  files += 1;
  return path.join(root, `db-${files}`, "blacktree.db");
}

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

storeConformance("sqlite", async () => new SqliteJobStore({ file: freshFile(), secrets }), {
  openPeer: async (store) => new SqliteJobStore({ file: (store as SqliteJobStore).file, secrets }),
});

const job = newJob;

describe("SqliteJobStore", () => {
  const open: JobStore[] = [];
  async function openStore(file: string): Promise<SqliteJobStore> {
    const store = new SqliteJobStore({ file, secrets });
    open.push(store);
    await store.migrate();
    return store;
  }
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });

  it("keeps secrets sealed at rest (AES-256-GCM, bound to their row); a previous key still opens them", async () => {
    const file = freshFile();
    const store = await openStore(file);
    await store.createJob(job("sealed", { secrets: { token: "ghp_atRestSecret42" } }), T0);
    await store.createJob(job("other", { secrets: { token: "ghp_other" } }), T0);
    const raw = new Database(file);
    try {
      const rows = raw.prepare("SELECT job_id, value FROM job_secrets ORDER BY job_id").all() as Array<{ job_id: string; value: string }>;
      expect(rows.map((r) => r.value).join()).not.toContain("ghp_");
      expect(fs.readFileSync(file).includes("ghp_atRestSecret42")).toBe(false);
      // A sealed value moved to another job's row does not open.
      raw.prepare("UPDATE job_secrets SET value = ? WHERE job_id = 'other'").run(rows.find((r) => r.job_id === "sealed")!.value);
    } finally {
      raw.close();
    }
    await expect(store.getSecrets("other")).rejects.toMatchObject({ type: "INTERNAL" });
    expect(await store.getSecrets("sealed")).toStrictEqual({ token: "ghp_atRestSecret42" });
    await store.close();
    const rotated = new SqliteJobStore({ file, secrets: new SecretBox(Buffer.alloc(32, 9), [Buffer.alloc(32, 7)]) });
    open.push(rotated);
    expect(await rotated.getSecrets("sealed")).toStrictEqual({ token: "ghp_atRestSecret42" });
    const wrongKey = new SqliteJobStore({ file, secrets: new SecretBox(Buffer.alloc(32, 9)) });
    open.push(wrongKey);
    await expect(wrongKey.getSecrets("sealed")).rejects.toMatchObject({ message: expect.stringMatching(/BLACKTREE_SECRETS_KEY/) });
    const noKey = new SqliteJobStore({ file });
    open.push(noKey);
    await expect(noKey.createJob(job("plain", { secrets: { token: "x" } }), T0)).rejects.toMatchObject({ type: "CONFIG_INVALID" });
  });

  it("creates its directory, records migrations, runs in WAL mode, and keeps data across close and reopen", async () => {
    const file = freshFile();
    const first = await openStore(file);
    await first.createJob(job("kept", { secrets: { githubToken: "t" } }), T0);
    await first.claimJobs({ now: T0 + 1, limits: {}, max: 1 });
    await first.setCursor("amqp", 2);
    const before = { job: await first.getJob("kept"), events: await first.getEvents("kept"), attempts: await first.getAttempts("kept") };
    for (const f of [file, `${file}-wal`]) expect(fs.statSync(f).mode & 0o777).toBe(0o600); // job data is owner-only
    await first.close();

    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(raw.prepare("SELECT version FROM schema_migrations ORDER BY version").pluck().all()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    } finally {
      raw.close();
    }

    const second = await openStore(file);
    expect({ job: await second.getJob("kept"), events: await second.getEvents("kept"), attempts: await second.getAttempts("kept") }).toStrictEqual(before);
    expect(await second.getSecrets("kept")).toStrictEqual({ githubToken: "t" });
    expect(await second.getCursor("amqp")).toBe(2);
  });

  it("works in memory", async () => {
    const store = await openStore(":memory:");
    expect((await store.createJob(job("m"), T0)).created).toBe(true);
    expect(await store.getJob("m")).not.toBeNull();
  });

  it("refuses a database migrated by a newer build", async () => {
    const file = freshFile();
    await (await openStore(file)).close();
    const raw = new Database(file);
    raw.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)").run();
    raw.close();
    await expect(openStore(file)).rejects.toMatchObject({ type: "CONFIG_INVALID" });
  });

  it("reports STORE_UNAVAILABLE once closed", async () => {
    const store = await openStore(freshFile());
    await store.close();
    await expect(store.ping()).rejects.toMatchObject({ type: "STORE_UNAVAILABLE", retryable: true });
    await expect(store.getJob("x")).rejects.toMatchObject({ type: "STORE_UNAVAILABLE" });
  });

  describe("claiming from several processes at once", () => {
    const PROCESSES = 4;

    async function seed(file: string, count: number): Promise<void> {
      const store = await openStore(file);
      for (let i = 0; i < count; i++) await store.createJob(job(`p-${String(i).padStart(4, "0")}`, { concurrencyKey: `k-${i % 50}` }), T0 + i);
      await store.close();
    }

    it("never claims a job twice", async () => {
      const file = freshFile();
      await seed(file, 300);
      const claimed = (await runClaimers(file, PROCESSES, { perKey: 10 })).flat();
      expect(claimed).toHaveLength(300);
      expect(new Set(claimed).size).toBe(300);

      const store = await openStore(file);
      const launches = (await store.readEvents(0, 10_000)).filter((e) => e.kind === "job.launching");
      expect(launches).toHaveLength(300);
      expect((await store.activeAttempts()).every((a) => a.attempt.attempt === 1)).toBe(true);
    });

    it("never exceeds the concurrency limits together", async () => {
      const file = freshFile();
      await seed(file, 300);
      const claimed = (await runClaimers(file, PROCESSES, { global: 40 })).flat();
      expect(claimed).toHaveLength(40);
      // One active job per key by default: 40 claims spread over 40 distinct keys.
      const store = await openStore(file);
      const keys = (await store.jobsInStates(["launching"])).map((j) => j.concurrencyKey);
      expect(new Set(keys).size).toBe(40);
    });
  });
});

describe("createStore", () => {
  it("opens SQLite under the data directory when no database URL is set", async () => {
    const dataDir = path.join(root, "data-dir");
    const store = createStore({ dataDir, secrets });
    try {
      expect(store).toBeInstanceOf(SqliteJobStore);
      expect((store as SqliteJobStore).file).toBe(path.join(dataDir, "blacktree.db"));
      await store.migrate();
      expect(fs.existsSync(path.join(dataDir, "blacktree.db"))).toBe(true);
    } finally {
      await store.close();
    }
  });

  it("opens the PostgreSQL dialect for a postgres:// URL (connecting only when used)", async () => {
    const store = createStore({ databaseUrl: "postgres://guest@localhost/blacktree", dataDir: root, secrets });
    expect(store.dialect).toBe("postgres");
    await store.close();
  });

  it("refuses a database URL of another kind", () => {
    expect(() => createStore({ databaseUrl: "mysql://localhost/x", dataDir: root, secrets })).toThrow(expect.objectContaining({ type: "CONFIG_INVALID" }));
  });
});

/**
 * Claims everything claimable from `processes` child processes, each with its own
 * connection, released together so that their transactions contend for the file.
 * Resolves with the ids each process claimed.
 */
async function runClaimers(file: string, processes: number, limits: Limits): Promise<string[][]> {
  const script = `
    const { SqliteJobStore } = require(${JSON.stringify(require.resolve("../../lib/store/sqlite/sqlite-store"))});
    (async () => {
      const store = new SqliteJobStore({ file: process.env.STORE_FILE });
      const limits = JSON.parse(process.env.LIMITS);
      process.stdout.write("ready\\n");
      await new Promise((resolve) => process.stdin.once("data", resolve));
      const claimed = [];
      for (;;) {
        const claims = await store.claimJobs({ now: ${T0 + 1_000_000}, limits, max: 2 });
        if (claims.length === 0) break;
        for (const c of claims) claimed.push(c.job.id);
      }
      await store.close();
      process.stdout.write(JSON.stringify(claimed) + "\\n");
      process.stdin.destroy();
    })().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
  `;
  const children = Array.from({ length: processes }, () =>
    spawn(process.execPath, ["-r", require.resolve("tsx/cjs"), "-e", script], {
      env: { ...process.env, STORE_FILE: file, LIMITS: JSON.stringify(limits) },
      stdio: ["pipe", "pipe", "pipe"],
    }),
  );
  const outputs = children.map((child) => {
    let stdout = "";
    let stderr = "";
    let onReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.startsWith("ready\n")) onReady();
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const done = new Promise<string[]>((resolve, reject) =>
      child.on("close", (code) => {
        onReady();
        if (code !== 0) return reject(new Error(`claimer exited with ${code}: ${stderr}`));
        resolve(JSON.parse(stdout.slice("ready\n".length)) as string[]);
      }),
    );
    return { ready, done };
  });
  // Release them together: each waits on stdin after opening its connection.
  await Promise.all(outputs.map((o) => o.ready));
  for (const child of children) child.stdin.write("go\n");
  return Promise.all(outputs.map((o) => o.done));
}
