import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/**
 * Everything the target knows about a worker lives in files named after its launch key,
 * so a restarted orchestrator (a new target instance on the same stateDir) re-adopts it.
 */
export interface WorkerFiles {
  /** The launch record: written once the worker runs, the key's proof of launch. */
  record: string;
  /** Written by the wrapper when the worker ends (or by stop() when it had to kill the wrapper). */
  exit: string;
  /** The worker's stdout and stderr. */
  log: string;
  /** Held while a launch is under way, so two target instances never both spawn. */
  claim: string;
}

export interface LaunchRecord {
  key: string;
  /** The wrapper shell: the worker's parent and the leader of its process group. */
  pid: number;
  /** /proc/<pid>/stat field 22: tells our process apart from a later one reusing the pid. */
  startTime: number;
  /** Pids and start times only mean something within one boot. */
  bootId: string;
  launchedAt: number;
}

const RECORD_SUFFIX = ".json";
const MAX_READABLE_NAME = 120;

/**
 * A filename-safe form of a launch key, one-to-one: [A-Za-z0-9_-] stay, every other
 * UTF-8 byte becomes `.xx` ('.' itself included, so decoding is unambiguous). Long or
 * malformed keys become `~<sha256>`, which the readable form can never produce.
 */
export function safeKey(key: string): string {
  // A lone surrogate would be encoded as U+FFFD, so two such keys could collide.
  if (!/\p{Surrogate}/u.test(key)) {
    let name = "";
    for (const byte of Buffer.from(key, "utf8")) {
      const ch = String.fromCharCode(byte);
      name += /[A-Za-z0-9_-]/.test(ch) ? ch : `.${byte.toString(16).padStart(2, "0")}`;
    }
    if (name.length > 0 && name.length <= MAX_READABLE_NAME) return name;
  }
  return `~${createHash("sha256").update(key, "utf8").digest("hex")}`;
}

export function workerFiles(stateDir: string, key: string): WorkerFiles {
  const base = path.join(stateDir, safeKey(key));
  return { record: base + RECORD_SUFFIX, exit: `${base}.exit`, log: `${base}.log`, claim: `${base}.claim` };
}

export function listRecordFiles(stateDir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(stateDir);
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith(RECORD_SUFFIX)).map((n) => path.join(stateDir, n));
}

export function readRecord(file: string): LaunchRecord | null {
  const data = readJson(file);
  if (!data || typeof data !== "object") return null;
  const r = data as Partial<LaunchRecord>;
  return typeof r.key === "string" && typeof r.pid === "number" && typeof r.startTime === "number"
    ? { key: r.key, pid: r.pid, startTime: r.startTime, bootId: String(r.bootId ?? ""), launchedAt: Number(r.launchedAt ?? 0) }
    : null;
}

export function writeRecord(file: string, record: LaunchRecord): void {
  writeFileAtomic(file, JSON.stringify(record) + "\n");
}

/** The worker's exit code, or null while none is recorded. */
export function readExitCode(file: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch {
    return null;
  }
  return /^\d+$/.test(text) ? Number(text) : null;
}

/** Readers never see a half-written file: write aside, then rename over. */
export function writeFileAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Like writeFileAtomic, but never replaces an existing file (link(2) fails with EEXIST). */
export function writeFileIfAbsent(file: string, data: string): boolean {
  const tmp = `${file}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}
