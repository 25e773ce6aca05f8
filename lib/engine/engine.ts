import { describeError } from "../errors";
import type { StoreChange } from "../store/job-store";
import { ACTIVE_STATES } from "../jobs/states";
import { WorkerCallbacks } from "./callbacks";
import { Canceller } from "./canceller";
import type { EngineContext } from "./context";
import { Effects } from "./effects";
import { Launcher } from "./launcher";
import { Lease, LEASE_TTL_MS } from "./lease";
import { Reaper } from "./reaper";
import { Reconciler } from "./reconciler";
import { Timers } from "./timers";

/** The engine's two halves, which a node may run apart: claiming and launching, and the clock. */
export type EnginePart = "launcher" | "clock";

/**
 * The job engine, usable without a broker: a launcher that claims and launches, and a
 * clock (reconciler, timers, effects, reaper) that follows attempts to an end. It reacts
 * to the store's own commit notices at once; interval sweeps remain only as the safety net.
 */
export class Engine {
  readonly launcher: Launcher;
  readonly reconciler: Reconciler;
  readonly timers: Timers;
  readonly canceller: Canceller;
  readonly effects: Effects;
  readonly callbacks: WorkerCallbacks;
  readonly reaper: Reaper;
  private readonly parts = new Set<EnginePart>();
  private readonly intervals: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | null = null;
  private lastReap = 0;
  private rearming = false;
  private rearmAgain = false;
  /** The sweeps of one clock at a time in a cluster (decisions are safe anyway; this saves the duplicate calls). */
  private readonly clockLease: Lease;

  constructor(readonly c: EngineContext) {
    this.reconciler = new Reconciler(c);
    this.launcher = new Launcher(c, (attempt) => this.reconciler.inspectSoon(attempt));
    this.timers = new Timers(c);
    this.canceller = new Canceller(c);
    this.effects = new Effects(c, this.canceller, this.reconciler, (key) => this.launcher.inFlight(key));
    this.callbacks = new WorkerCallbacks(c, (attempt) => this.reconciler.inspectSoon(attempt));
    this.reaper = new Reaper(c);
    this.clockLease = new Lease(c.store, "clock", c.settings.holder, LEASE_TTL_MS, c.now);
  }

  /** Starts a part (a node that runs both starts both); adopting what was in flight before a restart. */
  start(part: EnginePart): void {
    if (this.parts.has(part)) return;
    this.parts.add(part);
    this.unsubscribe ??= this.c.store.onCommit((change) => this.onChange(change));
    const every = (ms: number, fn: () => Promise<void> | void) => {
      const run = () => Promise.resolve().then(fn).catch((err) => this.c.logger.error(`❌ engine sweep failed: ${describeError(err).message}`));
      this.intervals.push(setInterval(run, ms));
      setImmediate(run);
    };
    if (part === "launcher") every(this.c.settings.dispatchIntervalMs, () => this.launcher.sweep());
    if (part === "clock") {
      every(this.c.settings.reconcileIntervalMs, () => this.sweepClock());
    }
  }

  /** Something changed elsewhere (another node's commit): react as to one of ours. */
  onChange(change: StoreChange): void {
    if (this.parts.has("launcher") && mayFreeOrQueue(change)) this.launcher.wake();
    if (this.parts.has("clock")) {
      if (change.effects) this.effects.kick();
      // The commit says its earliest wake-up: no need to ask the store (a round trip per
      // commit on PostgreSQL). Only a notice that does not say asks.
      if (change.wakeAt === undefined) this.rearm();
      else if (change.wakeAt !== null) this.timers.armBy(change.wakeAt);
    }
  }

  /** One look for the next wake-up at a time, however many commits arrive meanwhile (and one more after). */
  private rearm(): void {
    if (this.rearming) {
      this.rearmAgain = true;
      return;
    }
    this.rearming = true;
    void this.timers
      .rearm()
      .catch(() => undefined)
      .finally(() => {
        this.rearming = false;
        if (this.rearmAgain) {
          this.rearmAgain = false;
          this.rearm();
        }
      });
  }

  /** Stops the sweeps and waits, at most `timeoutMs`, for work in flight (launches, stops, decisions). */
  async stop(timeoutMs = 30_000): Promise<boolean> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const t of this.intervals.splice(0)) clearInterval(t);
    // Launches first: a launch that returns reports to the reconciler, which must still listen.
    const launched = await this.launcher.stop(timeoutMs);
    const drained = await Promise.all([this.reconciler.stop(timeoutMs), this.effects.stop(timeoutMs), this.timers.stop(), this.reaper.stop()]);
    this.parts.clear();
    await this.clockLease.release().catch(() => undefined);
    return launched && drained.every((d) => d !== false);
  }

  /** One reconcile pass now: inspect, deadlines, effects, and (when due) orphans — by the clock lease's holder. */
  async sweepClock(): Promise<void> {
    this.effects.kick();
    if (!(await this.clockLease.held())) return;
    this.timers.kick();
    await this.reconciler.sweep();
    const now = this.c.now();
    if (now - this.lastReap >= this.c.settings.reapIntervalMs) {
      this.lastReap = now;
      this.reaper.kick();
    }
  }
}

/**
 * Whether a commit can give the launcher something to claim: a job queued, or a slot freed
 * (a job left launching or running). A commit that only claimed, launched or started jobs
 * can do neither, and every claim pass is a transaction (PostgreSQL: two round trips for
 * nothing, after each claim and each launch). A notice that names no state wakes it.
 */
function mayFreeOrQueue(change: StoreChange): boolean {
  return change.states.length === 0 || change.states.some((state) => !ACTIVE_STATES.includes(state));
}
