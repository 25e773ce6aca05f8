import type { JobStore } from "../../lib/store/job-store";

/** What a counting store has seen while `counting` was on. */
export interface StoreReads {
  counting: boolean;
  /** Sum of the lengths of the arrays the store's methods returned (a page's `items` count too). */
  rows: number;
  /** The same, per method, and how many calls each method got. */
  rowsByMethod: Record<string, number>;
  callsByMethod: Record<string, number>;
  reset(): void;
}

function rowsIn(result: unknown): number {
  if (Array.isArray(result)) return result.length;
  if (result && typeof result === "object" && Array.isArray((result as { items?: unknown }).items)) return (result as { items: unknown[] }).items.length;
  return 0;
}

/**
 * Wraps a store in a Proxy that counts the rows every method hands back (through the
 * public JobStore interface only: whatever the engine reads, however it is built).
 */
export function countingStore(store: JobStore): { store: JobStore; reads: StoreReads } {
  const reads: StoreReads = {
    counting: false,
    rows: 0,
    rowsByMethod: {},
    callsByMethod: {},
    reset() {
      reads.rows = 0;
      reads.rowsByMethod = {};
      reads.callsByMethod = {};
    },
  };
  const count = (method: string, result: unknown) => {
    if (!reads.counting) return;
    const n = rowsIn(result);
    reads.rows += n;
    reads.rowsByMethod[method] = (reads.rowsByMethod[method] ?? 0) + n;
    reads.callsByMethod[method] = (reads.callsByMethod[method] ?? 0) + 1;
  };
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const out = value.apply(target, args);
        if (out && typeof (out as Promise<unknown>).then === "function") {
          return (out as Promise<unknown>).then((r) => {
            count(String(prop), r);
            return r;
          });
        }
        count(String(prop), out);
        return out;
      };
    },
  });
  return { store: proxy, reads };
}

/** For `startNode({ wrapStore })`: counts what the node reads and keeps the store it wrapped (`raw`) for the test's own calls. */
export function nodeStoreCounter(): { wrapStore(store: JobStore): JobStore; raw: JobStore | undefined; reads: StoreReads | undefined } {
  const counter = {
    raw: undefined as JobStore | undefined,
    reads: undefined as StoreReads | undefined,
    wrapStore(store: JobStore): JobStore {
      counter.raw = store;
      const counted = countingStore(store);
      counter.reads = counted.reads;
      return counted.store;
    },
  };
  return counter;
}
