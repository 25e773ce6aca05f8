import { describeError } from "../errors";
import type { Attempt, Job } from "../jobs/model";
import { endOfWorker, endTransition } from "../jobs/outcomes";
import type { TargetHandle, TargetStatus } from "../plugins/sdk";
import type { ActiveAttempt, EffectInput } from "../store/job-store";
import type { EngineContext } from "./context";
import { TARGET_CALL_TIMEOUTS } from "./targets";
import { withTimeout, WorkPool } from "./work-pool";

/** Handles per inspect call (ECS DescribeTasks takes 100). */
const INSPECT_BATCH = 100;
/** Bytes of an attempt's log kept in the store when it ends. */
export const STORED_LOG_BYTES = 64 * 1024;
/** A decision that lost its compare-and-set to another writer is made again on fresh state, this often. */
const DECIDE_TRIES = 3;
/** Ended attempt keys remembered (about a burst's worth; an older one costs one read). */
const ENDED_KEPT = 10_000;

type Ended = Extract<TargetStatus, { state: "exited" | "lost" }>;

/**
 * Target status (pushed by the target or inspected) → one decision per attempt. A status
 * that ends a worker is decided on the attempt and job as they are when it is decided,
 * and written as a compare-and-set on them, so a stale status changes nothing.
 */
export class Reconciler {
  /** Finishing attempts (log collection + the decision), one at a time per attempt. */
  private readonly finishing: WorkPool;
  /** Inspect calls: one in flight per target. */
  private readonly inspecting: WorkPool;
  /** Fresh attempts to inspect soon, by target. */
  private readonly soon = new Map<string, Map<string, TargetHandle>>();
  private soonTimer: NodeJS.Timeout | undefined;
  /** Inspections with their decisions under way (the pools track only their calls). */
  private readonly passes = new Set<Promise<void>>();
  private stopped = false;
  /**
   * Attempts whose end this node recorded, most recent last: a later status of one (the
   * prompt inspection after a pushed exit) is old news and costs no store read.
   */
  private readonly ended = new Set<string>();

  constructor(private readonly c: EngineContext) {
    this.finishing = new WorkPool(32, (key, err) => c.logger.error(`❌ reconcile of ${key} failed: ${describeError(err).message}`));
    this.inspecting = new WorkPool(8, (key, err) => c.logger.warn(`⚠️ cannot inspect target '${key}': ${describeError(err).message}`));
  }

  /** A status a target pushed (or an inspection returned); settles once it is decided. */
  async onStatus(status: TargetStatus): Promise<void> {
    if (this.stopped) return;
    if (status.state === "exited" || status.state === "lost") {
      if (this.ended.has(status.key)) return;
      const ended = status;
      await this.finishing.run(status.key, () => this.finish(ended));
    } else if (status.state === "running") {
      await this.markRunning(status.key).catch((err) => this.c.logger.error(`❌ recording ${status.key} as running failed: ${describeError(err).message}`));
    }
  }

  /** A freshly launched attempt is inspected promptly, batched with others launched about now. */
  inspectSoon(attempt: Attempt): void {
    if (!attempt.handle || this.stopped) return;
    const byTarget = this.soon.get(attempt.target) ?? new Map<string, TargetHandle>();
    byTarget.set(attempt.key, attempt.handle as TargetHandle);
    this.soon.set(attempt.target, byTarget);
    this.soonTimer ??= setTimeout(() => this.flushSoon(), 20);
  }

  /** Inspects what waits in `soon`; a target whose lane is still busy keeps its handles for the next flush. */
  private flushSoon(): void {
    this.soonTimer = undefined;
    for (const [target, handles] of [...this.soon]) {
      const lane = `soon:${target}`;
      if (this.inspecting.has(lane)) continue;
      this.soon.delete(target);
      void this.inspect(target, [...handles.values()], lane).finally(() => {
        if (this.soon.size && !this.stopped) this.soonTimer ??= setTimeout(() => this.flushSoon(), 20);
      });
    }
  }

  /** The safety net: inspects every attempt that holds compute, batched per target; settles once decided. */
  async sweep(): Promise<void> {
    const byTarget = new Map<string, ActiveAttempt[]>();
    for (const a of await this.c.store.activeAttempts()) {
      if (a.attempt.handle === null) continue; // still launching: the launcher owns it
      const list = byTarget.get(a.attempt.target) ?? [];
      list.push(a);
      byTarget.set(a.attempt.target, list);
    }
    await Promise.all([...byTarget].map(([target, list]) => this.inspect(target, list.map((a) => a.attempt.handle as TargetHandle), target)));
  }

  async stop(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    clearTimeout(this.soonTimer);
    const [a, b] = await Promise.all([this.inspecting.idle(timeoutMs), this.finishing.idle(timeoutMs), Promise.allSettled([...this.passes])]);
    return a && b;
  }

  /** The worker's last lines from its target (bounded in time and size); null when there are none. */
  async collectLog(attempt: Attempt): Promise<string | null> {
    if (!attempt.handle) return null;
    try {
      const lines = await withTimeout(this.c.targets.logs(attempt.target, attempt.handle as TargetHandle), TARGET_CALL_TIMEOUTS.logs, "logs");
      return lines.length ? tail(lines.join("\n")) : null;
    } catch {
      return null;
    }
  }

  /**
   * One inspect lane per target, so a slow target never piles up calls (a sweep finding it
   * busy skips it); the decisions run outside the lane. Settles once they are made.
   */
  private inspect(target: string, handles: TargetHandle[], lane: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const pass = this.inspectAndDecide(target, handles, lane).finally(() => this.passes.delete(pass));
    this.passes.add(pass);
    return pass;
  }

  private async inspectAndDecide(target: string, handles: TargetHandle[], lane: string): Promise<void> {
    const statuses: TargetStatus[] = [];
    await this.inspecting.run(lane, async () => {
      for (let i = 0; i < handles.length; i += INSPECT_BATCH) {
        const batch = handles.slice(i, i + INSPECT_BATCH);
        const answered = await withTimeout(this.c.targets.inspect(target, batch), TARGET_CALL_TIMEOUTS.inspect, `inspect on '${target}'`);
        const byKey = new Map(answered.map((s) => [s.key, s]));
        // A target that answers but does not know a worker has lost it.
        for (const h of batch) statuses.push(byKey.get(h.key) ?? { key: h.key, state: "lost", reason: "the target does not know this worker" });
      }
    });
    await Promise.all(statuses.map((s) => this.onStatus(s)));
  }

  private async markRunning(key: string): Promise<void> {
    const found = await this.c.store.attemptByKey(key);
    if (!found || found.job.state !== "launching" || found.job.attempt !== found.attempt.attempt || found.attempt.state !== "launching") return;
    await this.c.store.transition(found.job.id, {
      from: "launching",
      to: "running",
      expect: { attempt: found.attempt.attempt },
      attempt: { state: "running", startedAt: found.attempt.startedAt ?? this.c.now() },
      event: { data: { via: "target" } },
    });
  }

  private async finish(status: Ended): Promise<void> {
    const found = await this.c.store.attemptByKey(status.key);
    if (!found) return;
    if (found.attempt.state === "stopping") {
      // Cancelled or timed out, and now gone: its compute is free.
      const log = await this.collectLog(found.attempt);
      const stopped = await this.c.store.updateAttempt(found.job.id, found.attempt.attempt, { state: "stopped", ...(log ? { log } : {}) }, { onlyIfState: ["stopping"] });
      if (stopped) this.endedHere(status.key);
      return;
    }
    if (!isLive(found)) return;
    const log = (await this.collectLog(found.attempt)) ?? found.attempt.log;
    for (let i = 0; i < DECIDE_TRIES; i++) {
      // Decided on what was read after the status arrived; if anything moved since (the
      // slow log collection leaves time), the compare-and-set fails and it is read again.
      const fresh = i === 0 ? found : await this.c.store.attemptByKey(status.key);
      if (!fresh || !isLive(fresh)) return;
      const end = { ...endOfWorker(fresh.attempt, status), log };
      const effects: EffectInput[] = end.outcome === "SUCCEEDED" && this.c.registry.taskType(fresh.job.type)?.def.followUps ? [{ kind: "follow_ups", payload: { attempt: fresh.attempt.attempt } }] : [];
      const next = await this.c.store.transition(fresh.job.id, endTransition(fresh.job, fresh.attempt, end, this.c.now(), effects));
      if (next) {
        this.endedHere(status.key);
        return this.logEnd(next, fresh.attempt, end.reason, end.outcome);
      }
    }
  }

  private endedHere(key: string): void {
    this.ended.add(key);
    if (this.ended.size > ENDED_KEPT) this.ended.delete(this.ended.values().next().value as string);
  }

  private logEnd(next: Job, attempt: Attempt, reason: string, outcome: string): void {
    const how = `${next.state}${outcome === "SUCCEEDED" ? "" : ` (${reason})`}`;
    if (next.state === "succeeded") this.c.logger.info(`✅ job ${next.id} attempt ${attempt.attempt} ${how}`);
    else if (next.state === "retrying") this.c.logger.warn(`⚠️ job ${next.id} attempt ${attempt.attempt} ended: ${reason}; retrying at ${new Date(next.runAfter!).toISOString()}`);
    else this.c.logger.error(`❌ job ${next.id} attempt ${attempt.attempt} ${how}`);
  }
}

/** The job's current attempt, still holding its worker while the job waits on it. */
function isLive({ job, attempt }: ActiveAttempt): boolean {
  return job.attempt === attempt.attempt && (job.state === "launching" || job.state === "running") && (attempt.state === "launching" || attempt.state === "running");
}

export function tail(text: string): string {
  return text.length > STORED_LOG_BYTES ? text.slice(text.length - STORED_LOG_BYTES) : text;
}
