import type { Context, ServiceSchema } from "moleculer";
import type { StoreChange } from "../lib/store/job-store";
import { STORE_CHANGED_EVENT } from "./changes.service";
import type { AmqpLink } from "../lib/amqp/amqp-link";
import { assertResultQueues } from "../lib/amqp/topology";
import { Lease, LEASE_TTL_MS } from "../lib/engine/lease";
import { registerReadiness, unregisterReadiness } from "../lib/readiness";
import { asPluginLogger, Runtime } from "../lib/runtime";
import { amqpSink } from "../lib/status/amqp-sink";
import { JobIdentities } from "../lib/status/job-identities";
import { moleculerSink } from "../lib/status/moleculer-sink";
import { redisSink } from "../lib/status/redis-sink";
import { SinkDrain } from "../lib/status/sink-drain";
import type { StatusSink } from "../lib/status/sink";
import { amqpMixin } from "../mixins/amqp.mixin";

/** Fallback poll: wake-ups come with the store's commits, but another node's writes may not reach us. */
const POLL_MS = 500;
/** How long start-up waits for Redis before draining without it (its sink catches up once connected). */
const REDIS_START_WAIT_MS = 3000;

/**
 * Drains the outbox in commit order to each sink from the sink's own cursor: Moleculer
 * events always, RabbitMQ `api.status`/`api.result` with AMQP_URL, Redis pub/sub with
 * REDIS_URL. A cursor moves only after its sink took the events, so a crash or an
 * outage re-sends (at least once) and never skips; one sink being down holds back no other.
 */
export function statusService(rt: Runtime): ServiceSchema {
  let timer: NodeJS.Timeout | undefined;
  let drains: SinkDrain[] = [];
  let sinks: StatusSink[] = [];
  let unsubscribe: (() => void) | null = null;

  return {
    name: "status",
    mixins: rt.env.amqpUrl ? [amqpMixin(rt, { name: "blacktree-status", setup: assertResultQueues })] : [],
    events: {
      // Another node's commit (see services/changes.service.ts): ours arrive through the store.
      [STORE_CHANGED_EVENT](ctx: Context<StoreChange>) {
        if (ctx.nodeID !== this.broker.nodeID) drains.forEach((d) => d.kick());
      },
    },
    async started(this: any) {
      const logger = asPluginLogger(this.logger);
      // One memory of job identities for every sink: the usual flow reads no job rows.
      const identities = new JobIdentities(rt.store);
      sinks = [moleculerSink(this.broker, identities, rt.tracing, rt.store)];
      if (rt.env.amqpUrl) sinks.push(amqpSink(this.amqp as AmqpLink, rt.store, identities, rt.tracing));
      if (rt.env.redisUrl) {
        const redis = redisSink(rt.env.redisUrl, identities, logger);
        registerReadiness("redis", () => (redis.ready ? { ok: true } : { ok: false, error: redis.lastError ?? "not connected" }));
        sinks.push(redis);
        await redis.connected(REDIS_START_WAIT_MS);
      }
      drains = sinks.map((sink) => new SinkDrain(rt.store, sink, logger, new Lease(rt.store, `sink:${sink.name}`, () => this.broker.nodeID, LEASE_TTL_MS)));
      // Every commit of this node's store wakes the drains; the poll is the safety net.
      unsubscribe = rt.store.onCommit(() => drains.forEach((d) => d.kick()));
      timer = setInterval(() => drains.forEach((d) => d.kick()), POLL_MS);
      drains.forEach((d) => d.kick());
    },
    async stopped() {
      clearInterval(timer);
      unsubscribe?.();
      await Promise.all(drains.map((d) => d.stop()));
      unregisterReadiness("redis");
      for (const sink of sinks) await sink.close?.();
      drains = [];
      sinks = [];
    },
  };
}
