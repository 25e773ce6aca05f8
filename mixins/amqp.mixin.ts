import type { ServiceSchema } from "moleculer";
import type { ConfirmChannel } from "amqplib";
import { AmqpLink } from "../lib/amqp/amqp-link";
import { registerReadiness, unregisterReadiness } from "../lib/readiness";
import { asPluginLogger, Runtime } from "../lib/runtime";

/**
 * Gives a service `this.amqp`, an AmqpLink: connected (with backoff) before the service's
 * own `started`, so `started()` does not resolve while RabbitMQ is unreachable; drained
 * (stop consuming, finish in-flight, close) when the service stops. Readiness shows on `/health`.
 */
export function amqpMixin(rt: Runtime, opts: { name: string; setup?: (ch: ConfirmChannel) => Promise<void> }): Partial<ServiceSchema> {
  const url = rt.env.amqpUrl;
  if (!url) throw new Error("amqpMixin needs AMQP_URL");
  const check = `amqp:${opts.name}`;
  return {
    created(this: any) {
      this.amqp = new AmqpLink({
        url,
        name: opts.name,
        heartbeatSeconds: rt.env.amqpHeartbeatSeconds,
        reconnectMinMs: 250,
        reconnectMaxMs: 10_000,
        setup: opts.setup,
        logger: asPluginLogger(this.logger),
      });
      const link: AmqpLink = this.amqp;
      registerReadiness(check, () => (link.ready ? { ok: true } : { ok: false, error: link.lastError ?? "not connected" }));
    },
    async started(this: any) {
      try {
        await (this.amqp as AmqpLink).start(rt.env.amqpConnectTimeoutMs);
      } catch (err) {
        // Stop reconnecting: the node is not starting.
        await (this.amqp as AmqpLink).stop(0);
        throw err;
      }
    },
    async stopped(this: any) {
      unregisterReadiness(check);
      await (this.amqp as AmqpLink).stop();
    },
  };
}
