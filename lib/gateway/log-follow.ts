import type { Attempt } from "../jobs/model";
import { isFinal } from "../jobs/states";
import type { JobStore } from "../store/job-store";
import type { EventSink } from "./event-stream";

/** A line's place in a job's log: its attempt and its number within that attempt (1-based). SSE id `<attempt>:<line>`. */
export interface LogPosition {
  attempt: number;
  line: number;
}

/** Attempt states that still write to the log (a `stopping` attempt's log is collected when it stopped). */
const WRITING = new Set<Attempt["state"]>(["launching", "running", "stopping"]);

/**
 * The stored lines of an attempt with their numbers: the store keeps the log's tail, so the
 * first stored line is line `logLines - stored + 1` (at least 1: an ended attempt's log is
 * the target's copy, which may hold more lines than the worker posted).
 */
export function numberedLines(a: Pick<Attempt, "log" | "logLines">): Array<{ n: number; line: string }> {
  const lines = a.log !== null && a.log !== "" ? a.log.split("\n") : [];
  const first = Math.max(1, a.logLines - lines.length + 1);
  return lines.map((line, k) => ({ n: first + k, line }));
}

/** `Last-Event-ID` of a log stream: `<attempt>:<line>`; null when absent. */
export function parseLogPosition(raw: unknown): LogPosition | null | "invalid" {
  if (raw === undefined || raw === null || raw === "") return null;
  const m = typeof raw === "string" ? /^(\d{1,9}):(\d{1,12})$/.exec(raw.trim()) : null;
  return m ? { attempt: Number(m[1]), line: Number(m[2]) } : "invalid";
}

/**
 * Wakes the log followers of a job: the gateway kicks a job when a worker posted lines
 * through it, the event tail on each of the job's events, and a shared timer kicks every
 * follower (lines posted through another gateway node).
 */
export class LogWatch {
  private readonly followers = new Map<string, Set<() => void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(pollMs: number) {
    this.timer = setInterval(() => {
      for (const set of this.followers.values()) for (const kick of set) kick();
    }, pollMs);
    this.timer.unref();
  }

  watch(jobId: string, kick: () => void): () => void {
    let set = this.followers.get(jobId);
    if (!set) this.followers.set(jobId, (set = new Set()));
    set.add(kick);
    return () => {
      set!.delete(kick);
      if (!set!.size) this.followers.delete(jobId);
    };
  }

  has(jobId: string): boolean {
    return this.followers.has(jobId);
  }

  kick(jobId: string): void {
    for (const kick of this.followers.get(jobId) ?? []) kick();
  }

  get watched(): number {
    return this.followers.size;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * A job's log as `event: log` messages (`{attempt, line}`, id `<attempt>:<line>`): the lines
 * so far after `after`, then each line as the worker posts it; `event: end` once the job is
 * final and its last attempt has stopped writing.
 */
export async function followJobLogs(deps: { store: JobStore; watch: LogWatch }, jobId: string, after: LogPosition | null, sink: EventSink): Promise<void> {
  let cursor: LogPosition = after ?? { attempt: 0, line: 0 };
  let running = false;
  let again = false;
  const pump = async () => {
    const [job, attempts] = await Promise.all([deps.store.getJob(jobId), deps.store.getAttempts(jobId)]);
    if (!job || sink.closed) return;
    for (const a of attempts) {
      if (a.attempt < cursor.attempt) continue;
      for (const { n, line } of numberedLines(a)) {
        if (a.attempt === cursor.attempt && n <= cursor.line) continue;
        cursor = { attempt: a.attempt, line: n };
        sink.send(`${a.attempt}:${n}`, "log", { attempt: a.attempt, line });
      }
    }
    const last = attempts[attempts.length - 1];
    if (isFinal(job.state) && (!last || !WRITING.has(last.state))) sink.end();
  };
  const kick = () => {
    if (sink.closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    void pump()
      .catch(() => undefined) // the next kick (at the latest the shared timer's) reads again
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          kick();
        }
      });
  };
  sink.onClose(deps.watch.watch(jobId, kick));
  running = true;
  try {
    await pump();
  } finally {
    running = false;
    if (again) {
      again = false;
      kick();
    }
  }
}
