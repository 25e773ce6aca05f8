import { describeError } from "../errors";
import type { JobEvent } from "../jobs/model";
import type { PluginLogger } from "../plugins/sdk";
import type { JobStore } from "../store/job-store";
import { amqpMetrics } from "../amqp/amqp-metrics";
import type { Lease } from "../engine/lease";
import type { StatusSink } from "./sink";

const BATCH = 200;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

/**
 * Drains the outbox to one sink from its own cursor, so a sink that is down holds back
 * only itself. One pass at a time; a wake-up during a pass runs another. After a failed
 * pass the drain backs off (100 ms doubling to 5 s): wake-ups are ignored until the retry
 * timer fires, which runs one pass — so a refusing sink is not sent the same batch again
 * on every `outbox.written` and every poll.
 */
export class SinkDrain {
  private running = false;
  private again = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private current: Promise<void> = Promise.resolve();
  /** The sink's cursor as this drain last read or wrote it, and the lease term it belongs to. */
  private cursor: { seq: number; term: number } | null = null;

  constructor(
    private readonly store: JobStore,
    private readonly sink: StatusSink,
    private readonly logger: PluginLogger,
    /** With several status nodes: only the holder of the sink's lease drains it (one cursor, one order). */
    private readonly lease?: Pick<Lease, "held" | "release" | "term">,
  ) {}

  kick(): void {
    // In backoff: only the retry timer starts the next pass.
    if (this.stopped || this.retryTimer !== undefined) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.current = this.run().finally(() => (this.running = false));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.current;
    await this.lease?.release().catch(() => undefined);
  }

  private async run(): Promise<void> {
    try {
      do {
        this.again = false;
        if (this.lease && !(await this.lease.held())) break; // another node drains this sink
        // Read once per hold of the lease: while it is held, only this drain moves the cursor.
        const term = this.lease?.term ?? 0;
        const cursor = this.cursor?.term === term ? this.cursor.seq : await this.store.getCursor(this.sink.name);
        this.cursor = { seq: cursor, term };
        const events: JobEvent[] = await this.store.readEvents(cursor, BATCH);
        if (events.length === 0) break;
        await this.sink.deliver(events, async (seq) => {
          await this.store.setCursor(this.sink.name, seq);
          this.cursor = { seq, term };
        });
        if (events.length === BATCH) this.again = true;
      } while (this.again && !this.stopped);
      if (this.failures > 0) this.logger.info(`✅ status sink ${this.sink.name} delivering again`);
      this.failures = 0;
    } catch (err) {
      this.failures += 1;
      amqpMetrics.publishRetries.inc({ sink: this.sink.name });
      const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.failures - 1));
      // One warning per outage, not one per retry.
      if (this.failures === 1) this.logger.warn(`⚠️ status sink ${this.sink.name} paused: ${describeError(err).message}; 🔄 retrying`);
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      if (!this.stopped) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, delay);
      }
    }
  }
}
