import Redis from "ioredis";

/**
 * moleculer-web's rate-limit store, shared through Redis: with several gateways behind a
 * balancer, a key's requests count against one limit whichever gateway they reach. Fixed
 * windows aligned on the window length (INCR + PEXPIRE), like the in-memory store.
 * Fails open: while Redis is unreachable, a request is counted as the first of its window
 * rather than refused (the limit protects capacity, not authentication).
 */
export function redisRateStore(url: string, prefix = "blacktree:ratelimit") {
  const opened: Redis[] = [];
  class RedisRateStore {
    readonly redis: Redis;
    readonly windowMs: number;
    resetTime: number;

    constructor(windowMs: number) {
      this.windowMs = windowMs;
      this.resetTime = this.windowEnd();
      // The offline queue carries the first requests while it connects; a Redis that stays away fails them after one retry.
      this.redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false });
      this.redis.on("error", () => undefined); // reported by failing open below, not as an unhandled event
      opened.push(this.redis);
    }

    async inc(key: string): Promise<number> {
      const end = this.windowEnd();
      this.resetTime = end;
      const redisKey = `${prefix}:${end}:${key}`;
      try {
        const [[, count]] = (await this.redis.multi().incr(redisKey).pexpire(redisKey, this.windowMs + 1000).exec()) as [[Error | null, number]];
        return count;
      } catch {
        return 1;
      }
    }

    windowEnd(): number {
      return (Math.floor(Date.now() / this.windowMs) + 1) * this.windowMs;
    }
  }
  return {
    StoreFactory: RedisRateStore,
    /** moleculer-web never closes its stores: the gateway does, when it stops. */
    close: () => opened.splice(0).forEach((r) => r.disconnect()),
  };
}
