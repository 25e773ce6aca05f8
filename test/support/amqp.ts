import { execFileSync } from "node:child_process";
import amqplib from "amqplib";
import type { Channel, ChannelModel, ConfirmChannel } from "amqplib";
import { assertExecuteQueue, assertResultQueues, DEAD_LETTER_QUEUE, EXCHANGE, EXECUTE_KEY, EXECUTE_QUEUE, RECEIPTS_QUEUE, RESULT_KEY, STATUS_QUEUE } from "../../lib/amqp/topology";

export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
/** The backend's own results queue (it binds it to `api.result`). */
export const BACKEND_RESULTS = "api.result.queue";

/**
 * A client that talks to RabbitMQ exactly as the NestJS backend does: it declares the
 * exchange and `execute.queue` the same way, publishes jobs with `persistent: true`, and
 * reads results from its own `api.result.queue`.
 */
export class BackendClient {
  private constructor(
    readonly connection: ChannelModel,
    readonly channel: ConfirmChannel,
  ) {}

  /** `url` names the test's own vhost (test/support/vhost.ts `createVhost`): tests never use a vhost they share. */
  static async connect(name: string, url: string): Promise<BackendClient> {
    const connection = await amqplib.connect(url, { clientProperties: { connection_name: name } });
    connection.on("error", () => undefined); // some tests close their vhost's connections
    const channel = await connection.createConfirmChannel();
    channel.on("error", () => undefined);
    await channel.assertExchange(EXCHANGE, "direct", { durable: true });
    await channel.assertQueue(EXECUTE_QUEUE, { durable: true });
    await channel.bindQueue(EXECUTE_QUEUE, EXCHANGE, EXECUTE_KEY);
    await channel.assertQueue(BACKEND_RESULTS, { durable: true });
    await channel.bindQueue(BACKEND_RESULTS, EXCHANGE, RESULT_KEY);
    return new BackendClient(connection, channel);
  }

  /** Empties the wire queues of the client's (own) vhost. */
  async purgeAll(): Promise<void> {
    // Declared exactly as the node declares them, so this works on a fresh broker too.
    await assertExecuteQueue(this.channel);
    await assertResultQueues(this.channel);
    for (const q of [EXECUTE_QUEUE, STATUS_QUEUE, DEAD_LETTER_QUEUE, BACKEND_RESULTS, RECEIPTS_QUEUE]) await this.channel.purgeQueue(q);
  }

  /** `channel.publish('blacktree.direct', 'worker.execute', Buffer.from(JSON.stringify(msg)), {persistent:true})`. */
  publishJob(msg: unknown, options: Record<string, unknown> = {}): void {
    this.channel.publish(EXCHANGE, EXECUTE_KEY, Buffer.from(typeof msg === "string" ? msg : JSON.stringify(msg)), { persistent: true, ...options });
  }

  async confirmed(): Promise<void> {
    await this.channel.waitForConfirms();
  }

  async messageCount(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount;
  }

  /** Reads (and acks) every message now in `queue`. */
  async drain(queue: string): Promise<Array<{ body: string; headers: Record<string, unknown>; messageId?: string }>> {
    const out: Array<{ body: string; headers: Record<string, unknown>; messageId?: string }> = [];
    for (;;) {
      const msg = await this.channel.get(queue, { noAck: true });
      if (!msg) return out;
      out.push({ body: msg.content.toString("utf8"), headers: msg.properties.headers ?? {}, messageId: msg.properties.messageId });
    }
  }

  /** A private queue that sees every `api.status` event. */
  async watchStatus(onEvent: (e: any) => void): Promise<Channel> {
    const ch = await this.connection.createChannel();
    const { queue } = await ch.assertQueue("", { exclusive: true, autoDelete: true });
    await ch.bindQueue(queue, EXCHANGE, "api.status");
    await ch.consume(queue, (m) => m && onEvent(JSON.parse(m.content.toString("utf8"))), { noAck: true });
    return ch;
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}

/** Backend-style job message: no `type`, a token, an `owner/repo` repository. */
export function backendMessage(deploymentId: string, extra: Record<string, unknown> = {}) {
  return {
    deploymentId,
    token: TEST_TOKEN,
    repository: "blacktree-test/hello",
    branch: "main",
    dockerFilePath: "./Dockerfile",
    composeFilePath: "",
    contextDir: ".",
    createdAt: new Date().toISOString(),
    portNumber: "3000",
    autoDeploy: false,
    ...extra,
  };
}

export const TEST_TOKEN = "ghp_amqpTestSecretToken0123456789abcdef";

/** rabbitmqctl as root: a test's own vhosts and users (test/support/vhost.ts). */
export function rabbitmqctl(...args: string[]): void {
  try {
    execFileSync("rabbitmqctl", args, { stdio: "pipe", timeout: 30_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim();
    throw new Error(`rabbitmqctl ${args[0]} failed: ${stderr || (err as Error).message}`);
  }
}
