import { createHash } from "node:crypto";
import type { ConsumeMessage } from "amqplib";
import { describeError, errorType } from "../errors";
import type { FieldError } from "../errors";
import { MAX_JSON_DEPTH, tooDeepPath } from "../jobs/json-shape";
import { deriveJobId, NewJob } from "../jobs/model";
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS } from "../jobs/policy";
import type { PluginLogger } from "../plugins/sdk";
import type { JobStore } from "../store/job-store";
import type { Delivery } from "./amqp-link";
import { amqpMetrics } from "./amqp-metrics";
import { redactBody } from "./redact";
import { DEAD_LETTER_QUEUE, EXECUTE_QUEUE } from "./topology";

const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const DEPLOYMENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Bytes of a dead letter's body kept in the store (the DLQ message keeps all of it). */
const STORED_BODY_BYTES = 64 * 1024;

export interface ExecuteConsumerDeps {
  store: JobStore;
  /** `intake.submit`: validates and stores; throws VALIDATION_FAILED / UNKNOWN_TASK_TYPE for bad jobs. */
  submit(body: Record<string, unknown>, idempotencyKey: string | null): Promise<{ job: { id: string }; created: boolean }>;
  /** Publishes with a confirm (AmqpLink.publish). */
  publish(exchange: string, routingKey: string, content: Buffer, options: Record<string, unknown>): Promise<void>;
  logger: PluginLogger;
  maxBytes: number;
  requeueDelayMs: number;
}

/**
 * Handles one `execute.queue` message; acks only once its outcome is stored:
 * - a job → stored (idempotent on its key, so a redelivery never makes a second job);
 * - valid JSON that is not a valid job → a `rejected` job with field-level reasons (its
 *   final event publishes a legacy failure result), or a dead letter without a usable deploymentId;
 * - not JSON, not an object, too large → a dead letter (stored and published to execute.dlq);
 * - the store or the broker failing → nack with requeue after a delay (no hot redelivery loop).
 */
export async function handleExecuteMessage(msg: ConsumeMessage, delivery: Delivery, deps: ExecuteConsumerDeps): Promise<void> {
  try {
    const outcome = await decide(msg, deps);
    delivery.ack();
    if (outcome) deps.logger.info(outcome);
  } catch (err) {
    const e = describeError(err);
    deps.logger.warn(`⚠️ execute.queue message not handled (${e.type}: ${e.message}); requeued in ${deps.requeueDelayMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, deps.requeueDelayMs));
    delivery.nack(true);
  }
}

async function decide(msg: ConsumeMessage, deps: ExecuteConsumerDeps): Promise<string | null> {
  if (msg.content.length > deps.maxBytes) return deadLetter(msg, "TOO_LARGE", `message of ${msg.content.length} bytes exceeds ${deps.maxBytes}`, deps);
  const text = msg.content.toString("utf8");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return deadLetter(msg, "NOT_JSON", `not JSON: ${(err as Error).message}`, deps);
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) return deadLetter(msg, "NOT_AN_OBJECT", "the message must be a JSON object", deps);
  // Storing a rejected job serializes it: a message nested this deep would overflow the stack on every redelivery.
  const deep = tooDeepPath(body);
  if (deep !== null) return deadLetter(msg, "TOO_DEEP", `${deep} is nested deeper than ${MAX_JSON_DEPTH} levels`, deps);

  const raw = body as Record<string, unknown>;
  const messageId = typeof msg.properties.messageId === "string" && KEY_PATTERN.test(msg.properties.messageId) ? msg.properties.messageId : null;
  try {
    const { job, created } = await deps.submit(raw, messageId);
    return created ? null : `🔄 execute.queue redelivered job ${job.id}: already stored, acked`;
  } catch (err) {
    const type = errorType(err);
    if (type !== "VALIDATION_FAILED" && type !== "UNKNOWN_TASK_TYPE") throw err;
    return reject(msg, raw, err as { type: string; message: string; data?: { fields?: FieldError[] } }, messageId, deps);
  }
}

/** Stores a `rejected` job: its final event sends the legacy failure result for its deployment. */
async function reject(msg: ConsumeMessage, raw: Record<string, unknown>, err: { type: string; message: string; data?: { fields?: FieldError[] } }, messageId: string | null, deps: ExecuteConsumerDeps): Promise<string> {
  const deploymentId = typeof raw.deploymentId === "string" && DEPLOYMENT_ID.test(raw.deploymentId) ? raw.deploymentId : null;
  if (!deploymentId) return deadLetter(msg, "NO_DEPLOYMENT_ID", `invalid job without a usable deploymentId: ${err.message}`, deps);
  const { token: _token, ...params } = raw; // never store the secret
  const type = typeof raw.type === "string" && raw.type.length > 0 && raw.type.length <= 63 ? raw.type : "build";
  const fields = (err.data?.fields ?? []).map((f) => ({ field: f.field, message: f.message }));
  const job: NewJob = {
    id: rejectedJobId(raw, params, type, deploymentId, messageId),
    type,
    state: "rejected",
    deploymentId,
    priority: 0,
    target: null,
    concurrencyKey: null,
    params,
    secrets: {},
    timeouts: DEFAULT_TIMEOUTS,
    retry: DEFAULT_RETRY,
    source: "amqp",
    parentId: null,
    error: { type: err.type, message: err.message, fields },
    deadline: null,
    runAfter: null,
  };
  const stored = await deps.store.createJob(job);
  if (!stored.created) return `🔄 execute.queue redelivered rejected job ${job.id}: already stored, acked`;
  amqpMetrics.rejected.inc();
  return `❌ job ${job.id} rejected (deployment ${deploymentId}): ${fields.map((f) => f.field || "(message)").join(", ")}`;
}

/** The same key as a valid job would get; without one, a hash of the message itself (so a redelivery maps to it). */
function rejectedJobId(raw: Record<string, unknown>, params: Record<string, unknown>, type: string, deploymentId: string, messageId: string | null): string {
  const key = [raw.jobId, raw.idempotencyKey, messageId].find((k): k is string => typeof k === "string" && KEY_PATTERN.test(k));
  if (key) return key;
  if (typeof raw.createdAt === "string") return deriveJobId({ type, deploymentId, createdAt: raw.createdAt });
  return `job_${createHash("sha256").update(JSON.stringify(params)).digest("hex").slice(0, 24)}`;
}

/** Stores the dead letter (token redacted), publishes it to execute.dlq with a confirm; the caller acks. */
async function deadLetter(msg: ConsumeMessage, reason: string, detail: string, deps: ExecuteConsumerDeps): Promise<string> {
  const text = msg.content.toString("utf8");
  const body = msg.content.length > deps.maxBytes ? redactBody(text.slice(0, STORED_BODY_BYTES)) : redactBody(text);
  const messageId = typeof msg.properties.messageId === "string" ? msg.properties.messageId : null;
  // A redelivered poison message maps to the same dead letter.
  const id = `dl_${createHash("sha256").update(messageId ?? "").update("\0").update(msg.content).digest("hex").slice(0, 24)}`;
  const stored = await deps.store.addDeadLetter({
    id,
    source: `amqp:${EXECUTE_QUEUE}`,
    reason,
    detail: detail.slice(0, 1000),
    body: body.slice(0, STORED_BODY_BYTES),
    properties: { messageId, routingKey: msg.fields.routingKey, exchange: msg.fields.exchange, redelivered: msg.fields.redelivered, contentType: msg.properties.contentType ?? null },
    receivedAt: Date.now(),
  });
  await deps.publish("", DEAD_LETTER_QUEUE, Buffer.from(msg.content.length > deps.maxBytes ? redactBody(text) : body), {
    persistent: true,
    messageId: id,
    headers: { "x-blacktree-reason": reason, "x-blacktree-detail": detail.slice(0, 1000), "x-blacktree-dead-letter-id": id, "x-original-message-id": messageId },
  });
  if (!stored.created) return `🔄 execute.queue redelivered dead letter ${id} (${reason}): acked`;
  amqpMetrics.deadLettered.inc({ reason });
  return `⚠️ execute.queue message dead-lettered as ${id}: ${reason}`;
}
