import { randomUUID } from "node:crypto";
import net from "node:net";
import { AmqpLink } from "../../lib/amqp/amqp-link";
import { EXCHANGE } from "../../lib/amqp/topology";
import { createVhost, TestVhost } from "../support/vhost";

/** The link's publish contract against the real broker: resolves on confirm, rejects when returned. */
let vhost: TestVhost;
let link: AmqpLink | undefined;
const queue = `blacktree-link-test-${randomUUID().slice(0, 8)}`;
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

beforeAll(async () => {
  vhost = createVhost("link");
  link = new AmqpLink({
    url: vhost.url,
    name: "test-link",
    heartbeatSeconds: 5,
    reconnectMinMs: 100,
    reconnectMaxMs: 1000,
    logger: quiet,
    async setup(ch) {
      await ch.assertExchange(EXCHANGE, "direct", { durable: true });
      await ch.assertQueue(queue, { exclusive: true, autoDelete: true });
      await ch.bindQueue(queue, EXCHANGE, queue);
    },
  });
  await link.start(5000);
}, 300_000);

afterAll(async () => {
  try {
    await link?.stop();
  } finally {
    vhost?.remove();
  }
});

test("a routable mandatory publish resolves on the broker's confirm", async () => {
  await expect(link!.publish(EXCHANGE, queue, Buffer.from("x"), { mandatory: true })).resolves.toBeUndefined();
  expect(await link!.withChannel((ch) => ch.checkQueue(queue))).toMatchObject({ messageCount: 1 });
});

test("an unroutable mandatory publish is returned and rejects with PUBLISH_FAILED (the caller retries)", async () => {
  await expect(link!.publish(EXCHANGE, `nobody-binds-${randomUUID()}`, Buffer.from("x"), { mandatory: true })).rejects.toMatchObject({ type: "PUBLISH_FAILED", message: expect.stringMatching(/returned/) });
});

test("publishing while not connected rejects at once with AMQP_UNAVAILABLE", async () => {
  const offline = new AmqpLink({ url: "amqp://127.0.0.1:1", name: "offline", heartbeatSeconds: 5, reconnectMinMs: 100, reconnectMaxMs: 100, logger: quiet });
  await expect(offline.publish(EXCHANGE, "k", Buffer.from("x"))).rejects.toMatchObject({ type: "AMQP_UNAVAILABLE" });
});

test("publishes made in one tick leave in one socket write (amqplib writes each frame by itself)", async () => {
  // Counted at Node's socket layer: each call of _writeGeneric is one write or writev system call.
  const proto = net.Socket.prototype as unknown as { _writeGeneric: (...args: unknown[]) => unknown };
  const original = proto._writeGeneric;
  let writes = 0;
  proto._writeGeneric = function (this: unknown, ...args: unknown[]) {
    writes += 1;
    return original.apply(this, args);
  };
  try {
    const confirms = Array.from({ length: 50 }, (_, i) => link!.publish(EXCHANGE, queue, Buffer.from(`m${i}`)));
    await Promise.all(confirms);
  } finally {
    proto._writeGeneric = original;
  }
  // 50 publishes: one write for all of them (a heartbeat may add one); before, 50 writes.
  expect(writes).toBeLessThanOrEqual(3);
});
