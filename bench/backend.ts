/**
 * The bench as the Blacktree backend: publishes job messages on `execute.queue` exactly as
 * the backend does (exchange `blacktree.direct`, key `worker.execute`, persistent) and reads
 * the legacy results from a queue of its own bound to `api.result`.
 */
import { once } from "node:events";
import amqplib from "amqplib";
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { assertExecuteQueue, EXCHANGE, EXECUTE_KEY, EXECUTE_QUEUE, RESULT_KEY } from "../lib/amqp/topology";
import { backendMessage } from "../test/support/amqp";

export interface LegacyResult {
  deploymentId: string;
  success: boolean;
  error: string | null;
}

const RESULTS = "bench.results";

export class BenchBackend {
  private readonly waiters = new Map<string, (at: number, r: LegacyResult) => void>();
  /** Results that arrived before anyone waited for them. */
  private readonly early = new Map<string, { at: number; result: LegacyResult }>();

  private constructor(
    private readonly conn: ChannelModel,
    private readonly ch: ConfirmChannel,
  ) {}

  static async connect(url: string): Promise<BenchBackend> {
    const conn = await amqplib.connect(url, { clientProperties: { connection_name: "bench-backend" } });
    const ch = await conn.createConfirmChannel();
    await assertExecuteQueue(ch);
    await ch.assertQueue(RESULTS, { durable: false, autoDelete: true });
    await ch.bindQueue(RESULTS, EXCHANGE, RESULT_KEY);
    const backend = new BenchBackend(conn, ch);
    await ch.consume(RESULTS, (m) => m && backend.onResult(JSON.parse(m.content.toString("utf8"))), { noAck: true });
    return backend;
  }

  private onResult(r: LegacyResult): void {
    const at = performance.now();
    const waiter = this.waiters.get(r.deploymentId);
    if (waiter) {
      this.waiters.delete(r.deploymentId);
      waiter(at, r);
    } else this.early.set(r.deploymentId, { at, result: r });
  }

  /** A backend-style message (token, owner/repo, …) of the given bench task type. */
  static message(deploymentId: string, type: string, extra: Record<string, unknown> = {}): Buffer {
    return Buffer.from(JSON.stringify(backendMessage(deploymentId, { type, ...extra })));
  }

  async publish(body: Buffer): Promise<void> {
    if (!this.ch.publish(EXCHANGE, EXECUTE_KEY, body, { persistent: true })) await once(this.ch, "drain");
  }

  confirmed(): Promise<void> {
    return this.ch.waitForConfirms();
  }

  /** Messages in execute.queue not yet delivered to a consumer. */
  async ready(): Promise<number> {
    return (await this.ch.checkQueue(EXECUTE_QUEUE)).messageCount;
  }

  /** Resolves with the `performance.now()` at which the result for `deploymentId` arrived. */
  result(deploymentId: string, timeoutMs: number): Promise<{ at: number; result: LegacyResult }> {
    const early = this.early.get(deploymentId);
    if (early) {
      this.early.delete(deploymentId);
      return Promise.resolve(early);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(deploymentId);
        reject(new Error(`no legacy result for ${deploymentId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(deploymentId, (at, result) => {
        clearTimeout(timer);
        resolve({ at, result });
      });
    });
  }

  async close(): Promise<void> {
    await this.conn.close().catch(() => undefined);
  }
}
