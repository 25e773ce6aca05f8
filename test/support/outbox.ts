import type { JobStore } from "../../lib/store/job-store";

/** The newest outbox seq: a sink whose cursor is here has sent everything. */
export async function lastSeq(store: JobStore): Promise<number> {
  let seq = 0;
  for (;;) {
    const page = await store.readEvents(seq, 5000);
    if (!page.length) return seq;
    seq = page[page.length - 1].seq;
  }
}

/** Jobs per state, all types. */
export async function countStates(store: JobStore): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const row of await store.countByState()) out[row.state] = (out[row.state] ?? 0) + row.count;
  return out;
}

export const FINAL = ["succeeded", "failed", "timed_out", "cancelled", "rejected"];

export function countFinal(states: Record<string, number>): number {
  return FINAL.reduce((n, s) => n + (states[s] ?? 0), 0);
}

export function total(states: Record<string, number>): number {
  return Object.values(states).reduce((a, b) => a + b, 0);
}
