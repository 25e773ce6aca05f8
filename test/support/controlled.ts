import fs from "node:fs";
import path from "node:path";
import type { PluginsConfig } from "../../lib/config/plugins-config";
import { CONTROL_FILE, Control, JOURNAL_FILE, JournalEntry } from "./plugins/controlled";
import type { TestNode } from "./orchestrator";
import { waitFor, WaitOptions } from "./wait";

export type { Control, JournalEntry, KeyControl } from "./plugins/controlled";

/** The controlled test plugin (target `controlled`, task type `ctl`). */
export const CONTROLLED_PLUGIN = path.join(__dirname, "plugins/controlled");

/** Loads the controlled plugin into a node's config. */
export function useControlledTarget(config: PluginsConfig): void {
  config.plugins.push({ use: CONTROLLED_PLUGIN, config: {} });
}

/** Replaces the control file (the target re-reads it on every call). Written atomically. */
export function writeControl(dataDir: string, control: Control): void {
  const file = path.join(dataDir, CONTROL_FILE);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(control));
  fs.renameSync(`${file}.tmp`, file);
}

/** Every journal line so far, in the order written. */
export function readJournal(dataDir: string): JournalEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, JOURNAL_FILE), "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as JournalEntry);
}

export function entriesFor(journal: JournalEntry[], key: string, op?: JournalEntry["op"]): JournalEntry[] {
  return journal.filter((e) => e.key === key && (op === undefined || e.op === op));
}

/** Waits until a journal entry matches and returns it (the first match). */
export function waitForEntry(dataDir: string, match: (e: JournalEntry) => boolean, opts: WaitOptions = {}): Promise<JournalEntry> {
  return waitFor(() => readJournal(dataDir).find(match), { message: "journal entry never appeared", ...opts });
}

/**
 * Keys whose worker the journal says still runs: launched, not stopped or exited since,
 * and (with a runMs) not yet past it.
 */
export function workersStillRunning(journal: JournalEntry[], now = Date.now()): string[] {
  const alive = new Map<string, boolean>();
  for (const e of journal) {
    if (e.op === "launched" && !alive.has(e.key)) {
      const runMs = typeof e.runMs === "number" ? e.runMs : null;
      alive.set(e.key, runMs === null || e.at + runMs > now);
    } else if ((e.op === "stopped" && e.wasRunning) || e.op === "exit") {
      alive.set(e.key, false);
    }
  }
  return [...alive.entries()].filter(([, running]) => running).map(([key]) => key);
}

/** Plays the worker of `key`: posts a callback (`started`, `heartbeat`, …) with the token its launch carried. */
export async function reportAsWorker(dataDir: string, key: string, route: "started" | "heartbeat" = "started", body: unknown = {}): Promise<number> {
  const launched = entriesFor(readJournal(dataDir), key, "launched")[0];
  if (!launched?.callbackUrl || !launched.callbackToken) throw new Error(`no launched entry with a callback for ${key}`);
  const res = await fetch(`${launched.callbackUrl}/${route}`, {
    method: "POST",
    headers: { authorization: `Bearer ${launched.callbackToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await res.text();
  return res.status;
}

/** REST helpers shared by the finding tests. */
export async function submit(node: TestNode, body: Record<string, unknown>): Promise<string> {
  const res = await node.http("POST", "/api/jobs", body);
  if (res.status !== 202) throw new Error(`submit refused (${res.status}): ${res.text}`);
  return res.body.job.id as string;
}

export async function getJob(node: TestNode, id: string): Promise<any> {
  const res = await node.http("GET", `/api/jobs/${id}`);
  if (res.status !== 200) throw new Error(`GET /api/jobs/${id}: ${res.status} ${res.text}`);
  return res.body;
}

export function waitState(node: TestNode, id: string, states: string[], opts: WaitOptions = {}): Promise<any> {
  return waitFor(
    async () => {
      const view = await getJob(node, id);
      return states.includes(view.job.state) ? view : null;
    },
    { message: `job ${id} never reached ${states.join("|")}`, ...opts },
  );
}

/** `history[].at` as epoch ms, in the order the API lists them. */
export function historyTimes(view: any): number[] {
  return (view.history as Array<{ at: string }>).map((e) => Date.parse(e.at));
}
