import Redis from "ioredis";
import { amqpMetrics } from "../amqp/amqp-metrics";
import { redactUrl } from "../amqp/redact";
import { blacktreeError } from "../errors";
import type { PluginLogger } from "../plugins/sdk";
import type { JobIdentities } from "./job-identities";
import type { StatusSink } from "./sink";
import { statusEvent } from "./views";

export const REDIS_CHANNEL = "blacktree.status";

/** Redis pub/sub: every event on `blacktree.status` and on `blacktree.status.<deploymentId>`. */
export function redisSink(url: string, identities: JobIdentities, logger: PluginLogger): StatusSink & { readonly ready: boolean; lastError: string | null; connected(timeoutMs: number): Promise<void> } {
  const where = redactUrl(url);
  // No offline queue: while Redis is down a publish fails at once and the cursor stays put.
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false, retryStrategy: (n) => Math.min(5000, 100 * 2 ** Math.min(n, 6)) });
  const sink = {
    name: "redis",
    lastError: null as string | null,
    get ready() {
      return redis.status === "ready";
    },
    async deliver(events: Parameters<StatusSink["deliver"]>[0], delivered: Parameters<StatusSink["deliver"]>[1]) {
      if (redis.status !== "ready") throw blacktreeError("SINK_UNAVAILABLE", `Redis at ${where} is not connected`);
      const pipeline = redis.pipeline();
      for (const e of events) {
        const job = await identities.of(e);
        const text = JSON.stringify(statusEvent(e, job));
        pipeline.publish(REDIS_CHANNEL, text);
        if (job?.deploymentId) pipeline.publish(`${REDIS_CHANNEL}.${job.deploymentId}`, text);
      }
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed) throw failed[0];
      await delivered(events[events.length - 1].seq);
    },
    /** Resolves once connected, or after `timeoutMs` (Redis is optional: the sink retries on its own). */
    connected(timeoutMs: number): Promise<void> {
      if (redis.status === "ready") return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          redis.off("ready", done);
          resolve();
        }
        redis.once("ready", done);
      });
    },
    async close() {
      redis.disconnect();
    },
  };
  redis.on("ready", () => {
    sink.lastError = null;
    amqpMetrics.redisConnected.set(1);
    logger.info(`✅ Redis status sink connected to ${where}`);
  });
  redis.on("error", (err) => {
    if (sink.lastError === null) logger.warn(`⚠️ Redis status sink: ${err.message}; 🔄 reconnecting`);
    sink.lastError = err.message;
  });
  redis.on("end", () => amqpMetrics.redisConnected.set(0));
  redis.on("close", () => amqpMetrics.redisConnected.set(0));
  return sink;
}
