import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import amqp, { AmqpConnectionManager, ChannelWrapper } from "amqp-connection-manager";
import type { ConfirmChannel, ConsumeMessage, Options } from "amqplib";
import { blacktreeError } from "../errors";
import type { PluginLogger } from "../plugins/sdk";
import { amqpMetrics } from "./amqp-metrics";
import { redactUrl } from "./redact";

export interface AmqpLinkOptions {
  url: string;
  /** Shown in the RabbitMQ management UI and in our logs and metrics. */
  name: string;
  heartbeatSeconds: number;
  /** Reconnect delay doubles from this to `reconnectMaxMs`, and resets once connected. */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Declares what this link needs; runs again on every (re)connect before consumers start. */
  setup?(ch: ConfirmChannel): Promise<void>;
  logger: PluginLogger;
}

export interface Consumer {
  queue: string;
  prefetch: number;
  /** Settles the message itself (ack / nack / delayed nack) through the `Delivery` it gets. */
  handle(msg: ConsumeMessage, delivery: Delivery): Promise<void>;
}

/** Settles one message on the channel it came from (a stale channel's tags are not valid on the next). */
export interface Delivery {
  ack(): void;
  nack(requeue: boolean): void;
}

/**
 * One RabbitMQ connection with one confirm channel, on amqp-connection-manager: it
 * reconnects with backoff and re-runs `setup` and the consumers each time. Publishes
 * resolve only on the broker's confirm; a `mandatory` message the broker returns as
 * unroutable rejects, so the caller retries it.
 */
export class AmqpLink {
  private manager: AmqpConnectionManager | null = null;
  private wrapper: ChannelWrapper | null = null;
  private channel: ConfirmChannel | null = null;
  private readonly consumers: Consumer[] = [];
  private readonly consumerTags = new Map<Consumer, string>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly returned = new Set<string>();
  private reconnectAttempt = 0;
  private stopping = false;
  private connectedOnce: Promise<void>;
  private resolveConnected!: () => void;
  lastError: string | null = null;

  constructor(private readonly opts: AmqpLinkOptions) {
    this.connectedOnce = new Promise((resolve) => (this.resolveConnected = resolve));
  }

  /** Registered before `start`: consumers are (re)started by every setup. */
  consume(consumer: Consumer): void {
    this.consumers.push(consumer);
  }

  get ready(): boolean {
    return this.channel !== null && !this.stopping;
  }

  /** Connects; resolves once the first setup ran, rejects after `timeoutMs` (reconnecting goes on). */
  async start(timeoutMs: number): Promise<void> {
    const { name, logger } = this.opts;
    const where = redactUrl(this.opts.url);
    this.manager = amqp.connect([this.opts.url], {
      heartbeatIntervalInSeconds: this.opts.heartbeatSeconds,
      reconnectTimeInSeconds: 0.05,
      findServers: () => this.nextServer(),
      // No Nagle: a confirm or an ack is a small write that must not wait for the peer's delayed ACK (~40 ms).
      connectionOptions: { noDelay: true, clientProperties: { connection_name: name } },
    });
    this.manager.on("connect", ({ connection }) => {
      batchWritesPerTick((connection as unknown as { connection?: { stream?: Socket } }).connection?.stream);
      this.reconnectAttempt = 0;
      this.lastError = null;
      amqpMetrics.connected.set({ connection: name }, 1);
      logger.info(`✅ AMQP ${name} connected to ${where}`);
    });
    this.manager.on("disconnect", ({ err }) => {
      this.channel = null;
      this.lastError = err?.message ?? "disconnected";
      amqpMetrics.connected.set({ connection: name }, 0);
      if (!this.stopping) logger.warn(`⚠️ AMQP ${name} disconnected from ${where}: ${this.lastError}; 🔄 reconnecting`);
    });
    this.manager.on("connectFailed", ({ err }) => {
      this.lastError = err?.message ?? "connect failed";
      amqpMetrics.connected.set({ connection: name }, 0);
      if (!this.stopping) logger.warn(`⚠️ AMQP ${name} cannot connect to ${where}: ${this.lastError}; 🔄 retrying`);
    });
    this.wrapper = this.manager.createChannel({ confirm: true, json: false, setup: (ch: ConfirmChannel) => this.setup(ch) });
    this.wrapper.on("error", (err: Error) => logger.warn(`⚠️ AMQP ${name} channel error: ${err.message}`));

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(blacktreeError("AMQP_UNAVAILABLE", `RabbitMQ at ${where} not reachable within ${timeoutMs} ms${this.lastError ? `: ${this.lastError}` : ""}`)), timeoutMs);
    });
    try {
      await Promise.race([this.connectedOnce, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Publishes with a confirm. `mandatory` messages the broker returns (no queue bound)
   * reject with PUBLISH_FAILED; so do nacks and a channel lost before the confirm.
   */
  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish = {}): Promise<void> {
    // Still allowed while draining: in-flight messages may need to publish (dead letters) before they are acked.
    const ch = this.channel;
    if (!ch) return Promise.reject(blacktreeError("AMQP_UNAVAILABLE", `AMQP ${this.opts.name} is not connected`));
    const messageId = options.messageId ?? randomUUID();
    return new Promise<void>((resolve, reject) => {
      const done = (err: unknown) => {
        const wasReturned = this.returned.delete(messageId);
        if (err) {
          reject(blacktreeError("PUBLISH_FAILED", `publish to ${exchange || "(default)"}/${routingKey} not confirmed: ${(err as Error).message ?? err}`));
        } else if (wasReturned) {
          amqpMetrics.publishReturns.inc({ routing_key: routingKey });
          reject(blacktreeError("PUBLISH_FAILED", `publish to ${exchange || "(default)"}/${routingKey} returned: no queue is bound`));
        } else {
          amqpMetrics.publishConfirms.inc({ routing_key: routingKey });
          resolve();
        }
      };
      try {
        ch.publish(exchange, routingKey, content, { ...options, messageId }, done);
      } catch (err) {
        // The channel closed between the check and the call.
        done(err);
      }
    });
  }

  /** Runs `fn` on the current channel (queue checks, purges, gets). */
  async withChannel<T>(fn: (ch: ConfirmChannel) => Promise<T>): Promise<T> {
    const ch = this.channel;
    if (!ch) throw blacktreeError("AMQP_UNAVAILABLE", `AMQP ${this.opts.name} is not connected`);
    return fn(ch);
  }

  /** Graceful drain: stop consuming, let in-flight messages finish (and be acked), then close. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    const ch = this.channel;
    if (ch) {
      for (const tag of this.consumerTags.values()) await ch.cancel(tag).catch(() => undefined);
    }
    this.consumerTags.clear();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    await this.wrapper?.close().catch(() => undefined);
    await this.manager?.close().catch(() => undefined);
    this.channel = null;
    amqpMetrics.connected.set({ connection: this.opts.name }, 0);
  }

  private async setup(ch: ConfirmChannel): Promise<void> {
    ch.on("return", (msg) => {
      if (msg.properties.messageId) this.returned.add(String(msg.properties.messageId));
    });
    ch.on("close", () => {
      if (this.channel === ch) this.channel = null;
    });
    await this.opts.setup?.(ch);
    this.consumerTags.clear();
    // A reconnect during a drain must not start consuming again.
    for (const consumer of this.stopping ? [] : this.consumers) {
      // Per-consumer prefetch (RabbitMQ ≥ 3.3: `global: false` applies to consumers started after it).
      await ch.prefetch(consumer.prefetch, false);
      const { consumerTag } = await ch.consume(consumer.queue, (msg) => {
        if (msg) this.deliver(ch, consumer, msg);
      });
      this.consumerTags.set(consumer, consumerTag);
    }
    this.channel = ch;
    this.resolveConnected();
  }

  private deliver(ch: ConfirmChannel, consumer: Consumer, msg: ConsumeMessage): void {
    amqpMetrics.consumed.inc({ queue: consumer.queue, redelivered: String(msg.fields.redelivered) });
    // Acks go to the channel the message came from; if it closed, RabbitMQ redelivers the message.
    const delivery: Delivery = {
      ack: () => {
        try {
          ch.ack(msg);
          amqpMetrics.acked.inc({ queue: consumer.queue });
        } catch {
          /* channel gone: the message will be redelivered, and handling is idempotent */
        }
      },
      nack: (requeue) => {
        try {
          ch.nack(msg, false, requeue);
          amqpMetrics.nacked.inc({ queue: consumer.queue, requeue: String(requeue) });
        } catch {
          /* channel gone: redelivered anyway */
        }
      },
    };
    const work = consumer.handle(msg, delivery).catch((err) => {
      this.opts.logger.error(`❌ AMQP ${this.opts.name} handler for ${consumer.queue} failed: ${(err as Error)?.message ?? err}`);
      delivery.nack(true);
    });
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /** Called by the manager before each connect: waits the backoff, then names the server. */
  private async nextServer(): Promise<string> {
    const attempt = this.reconnectAttempt++;
    if (attempt > 0) {
      const delay = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectMinMs * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
    }
    return this.opts.url;
  }
}

/**
 * amqplib writes every frame to the socket by itself: a sink's batch of publishes or a
 * burst's acks were one system call each. Corked until the end of the tick, the frames
 * written in one tick leave in one write (the socket has no Nagle, so nothing else waits).
 */
function batchWritesPerTick(socket: Socket | undefined): void {
  if (!socket || typeof socket.cork !== "function") return;
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(() => {
        corked = false;
        socket.uncork();
      });
    }
    return write(...args);
  }) as Socket["write"];
}
