/**
 * Bounded concurrency for slow calls (launch, stop, logs, inspect), keyed so that one
 * piece of work never runs twice at once: a second `run` of a key in flight is refused.
 * The clock only hands work to a pool; it never waits for a target.
 */
export class WorkPool {
  private readonly running = new Map<string, Promise<void>>();
  private readonly waiting: Array<{ key: string; fn: () => Promise<void>; done: () => void }> = [];
  private readonly waitingKeys = new Set<string>();
  private active = 0;

  constructor(
    private readonly limit: number,
    private readonly onError: (key: string, err: unknown) => void,
  ) {}

  /**
   * Starts (or queues) the work unless the key is already in flight or queued (null then).
   * The promise settles when the work has ended; it never rejects (errors go to onError).
   */
  run(key: string, fn: () => Promise<void>): Promise<void> | null {
    if (this.has(key)) return null;
    if (this.active >= this.limit) {
      this.waitingKeys.add(key);
      return new Promise((done) => this.waiting.push({ key, fn, done }));
    }
    return this.start(key, fn);
  }

  has(key: string): boolean {
    return this.running.has(key) || this.waitingKeys.has(key);
  }

  get size(): number {
    return this.running.size + this.waiting.length;
  }

  /** Resolves when nothing is in flight or queued, or after `timeoutMs`; true when drained. */
  async idle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.running.values()]), new Promise((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
    return true;
  }

  private start(key: string, fn: () => Promise<void>): Promise<void> {
    this.active += 1;
    const done = (async () => {
      try {
        await fn();
      } catch (err) {
        this.onError(key, err);
      } finally {
        this.active -= 1;
        this.running.delete(key);
        this.next();
      }
    })();
    this.running.set(key, done);
    return done;
  }

  private next(): void {
    while (this.active < this.limit && this.waiting.length) {
      const item = this.waiting.shift()!;
      this.waitingKeys.delete(item.key);
      void this.start(item.key, item.fn).then(item.done);
    }
  }
}

/** Rejects when `promise` takes longer than `ms` (the call itself is not cancelled). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} took longer than ${ms} ms`), { type: "REQUEST_TIMEOUT", retryable: true })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
