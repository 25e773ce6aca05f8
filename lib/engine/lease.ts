import type { JobStore } from "../store/job-store";

/**
 * A lease in the store: one holder at a time of a loop that must not run twice (a status
 * sink's drain, the clock's sweeps). Renewed when a third of its time has passed, so a
 * holder writes a few times per TTL; when it dies, another takes over once the TTL ran out.
 */
export class Lease {
  private heldUntil = 0;
  /**
   * Counts the holds that began after a lapse: while it stays the same, nobody else held
   * the lease in between, so what the holder keeps in memory (a sink's cursor) is still true.
   */
  term = 0;

  constructor(
    private readonly store: JobStore,
    readonly name: string,
    private readonly holder: () => string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether this holder holds the lease now (taking or renewing it when due). */
  async held(): Promise<boolean> {
    const now = this.now();
    if (now < this.heldUntil - (2 * this.ttlMs) / 3) return true;
    const continuous = now < this.heldUntil;
    const ok = await this.store.acquireLease(this.name, this.holder(), this.ttlMs);
    if (ok && !continuous) this.term += 1;
    this.heldUntil = ok ? now + this.ttlMs : 0;
    return ok;
  }

  /** Lets another holder take over at once (a graceful stop). */
  async release(): Promise<void> {
    if (this.heldUntil === 0) return;
    this.heldUntil = 0;
    await this.store.releaseLease(this.name, this.holder());
  }
}

/** How long a lease lasts without renewal: the bound on a takeover after its holder died. */
export const LEASE_TTL_MS = 5_000;
