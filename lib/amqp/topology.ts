import type { Channel } from "amqplib";

/**
 * The wire names the Blacktree backend already uses (the backend contract, docs/architecture.md). They are fixed:
 * the backend publishes jobs and reads results with exactly these.
 */
export const EXCHANGE = "blacktree.direct";
export const EXECUTE_QUEUE = "execute.queue";
export const EXECUTE_KEY = "worker.execute";
export const RESULT_KEY = "api.result";
export const STATUS_KEY = "api.status";
export const STATUS_QUEUE = "status.queue";
export const DEAD_LETTER_QUEUE = "execute.dlq";
/**
 * Ours alone: a bounded copy of every legacy result, read after a reconnect or restart to
 * tell which unconfirmed results reached the broker (so they are not sent twice).
 */
export const RECEIPTS_QUEUE = "blacktree.result-receipts";
export const RECEIPTS_MAX = 10_000;

/** The exchange, as the backend declares it. */
export async function assertExchange(ch: Channel): Promise<void> {
  await ch.assertExchange(EXCHANGE, "direct", { durable: true });
}

/** `execute.queue` exactly as the backend declares it: durable, no arguments (others close the channel with 406). */
export async function assertExecuteQueue(ch: Channel): Promise<void> {
  await assertExchange(ch);
  await ch.assertQueue(EXECUTE_QUEUE, { durable: true });
  await ch.bindQueue(EXECUTE_QUEUE, EXCHANGE, EXECUTE_KEY);
  await ch.assertQueue(DEAD_LETTER_QUEUE, { durable: true });
}

/** Where results go: `status.queue` bound to `api.result`, and our receipts queue beside it. */
export async function assertResultQueues(ch: Channel): Promise<void> {
  await assertExchange(ch);
  await ch.assertQueue(STATUS_QUEUE, { durable: true });
  await ch.bindQueue(STATUS_QUEUE, EXCHANGE, RESULT_KEY);
  await ch.assertQueue(RECEIPTS_QUEUE, { durable: true, arguments: { "x-max-length": RECEIPTS_MAX, "x-overflow": "drop-head" } });
  await ch.bindQueue(RECEIPTS_QUEUE, EXCHANGE, RESULT_KEY);
}
