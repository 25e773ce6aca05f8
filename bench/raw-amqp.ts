/**
 * Section 1, the baseline: what plain amqplib does on this broker and machine. Publish with
 * publisher confirms, then consume + ack at several prefetch values, on a queue of our own
 * (durable, persistent messages of a backend message's size, like execute.queue).
 */
import { once } from "node:events";
import amqplib from "amqplib";
import type { ChannelModel } from "amqplib";
import type { Results } from "./report";
import { log, perSecond, withTimeout } from "./stats";

const EXCHANGE = "bench.raw.direct";
const QUEUE = "bench.raw";

async function connect(url: string, name: string): Promise<ChannelModel> {
  return amqplib.connect(url, { clientProperties: { connection_name: name } });
}

/** Publishes `n` persistent messages and waits for every confirm; returns msgs/s. */
async function publishConfirmed(conn: ChannelModel, n: number, body: Buffer): Promise<number> {
  const ch = await conn.createConfirmChannel();
  try {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      if (!ch.publish(EXCHANGE, QUEUE, body, { persistent: true, messageId: `raw-${i}` })) await once(ch, "drain");
    }
    await ch.waitForConfirms();
    return perSecond(n, performance.now() - t0);
  } finally {
    await ch.close();
  }
}

/** Consumes and acks `n` messages already in the queue at `prefetch`; returns msgs/s. */
async function consumeAck(conn: ChannelModel, n: number, prefetch: number): Promise<number> {
  const ch = await conn.createChannel();
  try {
    await ch.prefetch(prefetch);
    let seen = 0;
    let t0 = 0;
    const done = new Promise<number>((resolve) => {
      t0 = performance.now();
      void ch.consume(QUEUE, (msg) => {
        if (!msg) return;
        ch.ack(msg);
        if (++seen === n) resolve(performance.now() - t0);
      });
    });
    const ms = await withTimeout(done, 60_000, () => {
      throw new Error(`raw consume at prefetch ${prefetch} saw ${seen}/${n} in 60 s`);
    });
    return perSecond(n, ms);
  } finally {
    await ch.close();
  }
}

export async function runRawAmqp(url: string, opts: { messages: number; runs: number; prefetches: number[]; body: Buffer }, results: Results): Promise<void> {
  log("🔄", `raw amqplib: ${opts.runs} runs × ${opts.messages} messages (${opts.body.length} bytes), prefetch ${opts.prefetches.join(", ")}`);
  const pub = await connect(url, "bench-raw-publish");
  const sub = await connect(url, "bench-raw-consume");
  try {
    const setup = await pub.createChannel();
    await setup.assertExchange(EXCHANGE, "direct", { durable: true });
    await setup.assertQueue(QUEUE, { durable: true });
    await setup.bindQueue(QUEUE, EXCHANGE, QUEUE);
    await setup.purgeQueue(QUEUE);
    const publish: number[] = [];
    const consume = new Map<number, number[]>(opts.prefetches.map((p) => [p, []]));
    for (let run = 0; run < opts.runs; run++) {
      for (const p of opts.prefetches) {
        publish.push(await publishConfirmed(pub, opts.messages, opts.body));
        consume.get(p)!.push(await consumeAck(sub, opts.messages, p));
      }
    }
    await setup.deleteQueue(QUEUE);
    await setup.deleteExchange(EXCHANGE);
    await setup.close();
    results.add("raw.publish", "1 raw amqplib", "publish, confirmed (persistent)", "msgs/s", publish);
    for (const [p, runs] of consume) results.add(`raw.consume.p${p}`, "1 raw amqplib", `consume + ack, prefetch ${p}`, "msgs/s", runs);
    log("✅", `raw amqplib done`);
  } finally {
    await pub.close().catch(() => undefined);
    await sub.close().catch(() => undefined);
  }
}
