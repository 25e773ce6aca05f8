import { describeError } from "../errors";
import { firedDeadline } from "../jobs/deadlines";
import type { Job } from "../jobs/model";
import { endTransition } from "../jobs/outcomes";
import { clockMetrics } from "../metrics";
import type { EngineContext } from "./context";
import { stopAttemptEffect } from "./effects";

/** Due jobs read per store call, and calls per pass: a pass never reads the whole queue. */
const DUE_BATCH = 200;
const BATCHES_PER_PASS = 5;

/**
 * Deadlines and backoffs: reads only the jobs whose wake-up has come (an indexed query
 * with a limit), and arms one timer for the next wake-up, so a 500 ms queueTimeout fires
 * at 500 ms, not at the next tick. Each decision is made at the time it is made.
 */
export class Timers {
  private timer: NodeJS.Timeout | undefined;
  private armedFor: number | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(private readonly c: EngineContext) {}

  /** Runs a pass now (or right after the one under way). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /** A write may have brought a wake-up closer than the armed one. */
  async rearm(): Promise<void> {
    if (this.stopped) return;
    const next = await this.c.store.nextWake();
    if (next !== null && (this.armedFor === null || next < this.armedFor)) this.arm(next);
  }

  /** A write brought a wake-up at `at`: arms for it when it is sooner than the armed one. */
  armBy(at: number): void {
    if (!this.stopped && (this.armedFor === null || at < this.armedFor)) this.arm(at);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.armedFor = at;
    // Capped so that a clock jump or a far wake-up is still rechecked by the safety net.
    const delay = Math.min(Math.max(0, at - this.c.now()), this.c.settings.reconcileIntervalMs);
    this.timer = setTimeout(() => {
      this.armedFor = null;
      this.kick();
    }, delay);
  }

  private async pass(): Promise<void> {
    const started = process.hrtime.bigint();
    try {
      for (let i = 0; i < BATCHES_PER_PASS; i++) {
        const due = await this.c.store.dueJobs(this.c.now(), DUE_BATCH);
        for (const job of due) {
          try {
            await this.decide(job);
          } catch (err) {
            this.c.logger.error(`❌ deadline of job ${job.id} not handled: ${describeError(err).message}`);
          }
        }
        if (due.length < DUE_BATCH) break;
      }
      const next = await this.c.store.nextWake();
      if (next !== null) this.arm(next);
    } catch (err) {
      this.c.logger.error(`❌ clock pass failed: ${describeError(err).message}`);
    } finally {
      clockMetrics.tick.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  private async decide(job: Job): Promise<void> {
    const now = this.c.now();
    const attempt = job.attempt > 0 && (job.state === "launching" || job.state === "running") ? await this.c.store.getAttempt(job.id, job.attempt) : null;
    const fired = firedDeadline(job, attempt, now);
    const expect = { version: job.version };
    if (job.state === "queued" || job.state === "retrying") {
      if (fired) {
        const where = job.state === "queued" ? "before the job started" : "while waiting to retry";
        const done = await this.c.store.transition(job.id, { from: job.state, to: "timed_out", expect, patch: { error: { type: "TIMED_OUT", message: `${fired.timeout} elapsed ${where}` } }, event: { data: { timeout: fired.timeout } } });
        if (done) this.c.logger.error(`❌ job ${job.id} timed out ${where} (${fired.timeout})`);
        return;
      }
      if (job.state === "retrying" && job.runAfter !== null && job.runAfter <= now) {
        await this.c.store.transition(job.id, { from: "retrying", to: "queued", expect, event: { data: { nextAttempt: job.attempt + 1 } } });
        return;
      }
    } else if (attempt && fired) {
      const reason = `${fired.timeout} of ${fired.ms} ms elapsed`;
      const end = { outcome: fired.outcome, reason, timeout: fired.timeout, final: fired.timeout === "totalTimeout", attemptState: "stopping" as const };
      const next = await this.c.store.transition(job.id, endTransition(job, attempt, end, now, [stopAttemptEffect(attempt.attempt, reason)]));
      if (next) this.c.logger.warn(`⚠️ job ${job.id} attempt ${attempt.attempt}: ${reason}; stopping its worker (job ${next.state})`);
      return;
    }
    // Nothing due after all (the job changed since): its wake-up moves to its next deadline.
    await this.c.store.refreshWake(job.id);
  }
}
