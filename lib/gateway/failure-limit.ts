/**
 * Failed authentications per client address in fixed windows (as moleculer-web's rate
 * limiter counts requests): an address at the limit is refused until its window ends.
 */
export class FailureLimit {
  private readonly counts = new Map<string, number>();
  private windowEnd: number;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.windowEnd = now() + windowMs;
  }

  /** When the window ends, epoch ms (a refused client may try again then). */
  get resetAt(): number {
    this.roll();
    return this.windowEnd;
  }

  blocked(address: string): boolean {
    this.roll();
    return (this.counts.get(address) ?? 0) >= this.limit;
  }

  record(address: string): void {
    this.roll();
    this.counts.set(address, (this.counts.get(address) ?? 0) + 1);
  }

  private roll(): void {
    const now = this.now();
    if (now < this.windowEnd) return;
    this.counts.clear();
    this.windowEnd = now + this.windowMs;
  }
}
