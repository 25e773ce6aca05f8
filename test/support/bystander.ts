import amqplib from "amqplib";
import type { Channel, ChannelModel } from "amqplib";
import { BROKER, createVhost, TestVhost } from "./vhost";

/**
 * Someone else's traffic on the shared broker while the tests run (a developer's own app,
 * another engineer's tests): its own vhost, a connection of its own, messages lying in
 * queues that carry the orchestrator's fixed names, and a publisher and consumer going
 * back and forth. The tests must leave every bit of it alone: `check()` says what they
 * touched (a closed connection, a purged queue, a lost message, a deleted vhost).
 */
export const BYSTANDER_QUEUES = ["execute.queue", "status.queue", "execute.dlq", "api.result.queue", "blacktree.result-receipts"];
const PARKED = 5;
const LIVE_QUEUE = "bystander.live";

export interface Bystander {
  vhost: Pick<TestVhost, "name">;
  check(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * On a vhost of its own by default. `onDefaultVhost` (TEST_BYSTANDER_VHOST=/) puts it on
 * `/` instead, with queue names of its own (never the orchestrator's there: other people's
 * nodes consume those): it shows what a test does to a developer's default vhost.
 */
export async function startBystander(opts: { onDefaultVhost?: boolean } = {}): Promise<Bystander> {
  const own = opts.onDefaultVhost ? null : createVhost("bystander");
  const tag = `bystander-${process.pid}-${Date.now().toString(36)}`;
  const vhost: Pick<TestVhost, "name" | "url" | "remove"> = own ?? { name: "/", url: `${BROKER}/%2F`, remove: () => undefined };
  const queues = own ? BYSTANDER_QUEUES : BYSTANDER_QUEUES.map((q) => `${tag}.${q}`);
  const liveQueue = own ? LIVE_QUEUE : `${tag}.live`;
  const problems: string[] = [];
  let connection: ChannelModel;
  try {
    connection = await amqplib.connect(vhost.url, { clientProperties: { connection_name: tag } });
  } catch (err) {
    vhost.remove();
    throw err;
  }
  let closing = false;
  connection.on("error", (err) => problems.push(`the bystander's connection failed: ${err.message}`));
  connection.on("close", () => {
    if (!closing) problems.push("the bystander's connection was closed by someone else");
  });
  const channel: Channel = await connection.createChannel();
  channel.on("error", (err) => problems.push(`the bystander's channel failed: ${err.message}`));
  for (const q of queues) {
    await channel.assertQueue(q, { durable: true });
    for (let i = 0; i < PARKED; i++) channel.sendToQueue(q, Buffer.from(`parked ${q} ${i}`), { persistent: true });
  }
  await channel.assertQueue(liveQueue, { durable: false });
  const started = Date.now();
  let sent = 0;
  let received = 0;
  await channel.consume(liveQueue, (m) => {
    if (m) received += 1;
  }, { noAck: true });
  const timer = setInterval(() => {
    if (closing) return;
    try {
      channel.sendToQueue(liveQueue, Buffer.from(String(sent)));
      sent += 1;
    } catch {
      // counted by check(): the channel is gone
    }
  }, 250);
  timer.unref();

  return {
    vhost,
    async check() {
      const found = [...problems];
      const probe = await amqplib.connect(vhost.url).catch((err: Error) => {
        found.push(`the bystander's vhost cannot be reached any more: ${err.message}`);
        return null;
      });
      if (probe) {
        const ch = await probe.createChannel();
        for (const q of queues) {
          const { messageCount } = await ch.checkQueue(q).catch(() => ({ messageCount: -1 }));
          if (messageCount !== PARKED) found.push(`${vhost.name}/${q} holds ${messageCount} messages instead of ${PARKED}`);
        }
        await probe.close().catch(() => undefined);
      }
      // Everything sent more than a moment ago has arrived.
      if (sent - received > 8) found.push(`the bystander sent ${sent} messages and received ${received}`);
      if (Date.now() - started > 5_000 && sent < 2) found.push(`the bystander sent only ${sent} messages in ${Date.now() - started} ms`);
      return found;
    },
    async stop() {
      closing = true;
      clearInterval(timer);
      if (!own) {
        // On `/`, leave nothing of ours behind.
        const c = await amqplib.connect(vhost.url).catch(() => null);
        const ch = c && (await c.createChannel());
        for (const q of [...queues, liveQueue]) await ch?.deleteQueue(q).catch(() => undefined);
        await c?.close().catch(() => undefined);
      }
      await connection.close().catch(() => undefined);
      vhost.remove();
    },
  };
}

/** Whether the test broker answers at all (no bystander without one: the AMQP tests fail by themselves then). */
export async function brokerAnswers(): Promise<boolean> {
  try {
    const c = await amqplib.connect(BROKER, { timeout: 2000 });
    await c.close();
    return true;
  } catch {
    return false;
  }
}
