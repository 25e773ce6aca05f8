import { createHash } from "node:crypto";
import { NO_TRACING, type IntakeTrace, type Tracing } from "../tracing";
import type { ConsumeMessage, Options } from "amqplib";
import { describeError, errorType } from "../errors";
import type { FieldError } from "../errors";
import { MAX_JSON_DEPTH, tooDeepPath } from "../jobs/json-shape";
import { deriveJobId } from "../jobs/model";
import type { Job, NewJob } from "../jobs/model";
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS } from "../jobs/policy";
import type { PluginLogger } from "../plugins/sdk";
import type { JobStore } from "../store/job-store";
import type { Delivery } from "./amqp-link";
import { amqpMetrics } from "./amqp-metrics";
import { jsonErrorLocation } from "../config/validation-fields";
import { REDACTED, redactJsonText, redactValue, secretKeyTest, secretValuesIn } from "./redact";
import { DEAD_LETTER_QUEUE, EXECUTE_QUEUE } from "./topology";

const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const DEPLOYMENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Bytes of a dead letter's body kept in the store (the DLQ message keeps all of it). */
const STORED_BODY_BYTES = 64 * 1024;
/**
 * On a retry copy: how many handlings of this message failed so far (classic queues carry
 * no delivery count, so the count travels with the message).
 */
export const FAILURES_HEADER = "x-blacktree-handling-failures";
/** On a retry copy: the original's messageId (a copy published without one gets the link's own). */
export const ORIGINAL_ID_HEADER = "x-blacktree-original-message-id";

export interface ExecuteConsumerDeps {
  store: JobStore;
  /**
   * Validates one message's body into a job to store — the function `intake.submit` uses too
   * (`validator.validate`); throws VALIDATION_FAILED / UNKNOWN_TASK_TYPE for invalid jobs.
   */
  toNewJob(body: Record<string, unknown>, idempotencyKey: string | null, trace: IntakeTrace): Promise<NewJob>;
  /** Job traces: each message's intake is a span (a child of its `traceparent` header, when it has one). */
  tracing?: Tracing;
  /** Publishes with a confirm (AmqpLink.publish). */
  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void>;
  logger: PluginLogger;
  maxBytes: number;
  /** Wait before a message whose handling failed is retried (no hot loop). */
  requeueDelayMs: number;
  /** Failed handlings (other than validation failures) after which a message is dead-lettered as HANDLING_FAILED. */
  maxHandlingFailures: number;
  /** The loaded task types' `secretFields` (besides `token` and secret-named keys): redacted from dead letters and rejected jobs. */
  secretFields?: readonly string[];
}

/**
 * The execute.queue intake. Each message is acked only once its outcome is stored:
 * - a job → stored (idempotent on its key, so a redelivery never makes a second job);
 * - valid JSON that is not a valid job → a `rejected` job with field-level reasons (its
 *   final event publishes a legacy failure result), or a dead letter without a usable deploymentId;
 * - not JSON, not an object, too large, too deep → a dead letter (stored and published to execute.dlq);
 * - any other failure (the store, the broker, a plugin's check() throwing, DNS down) → retried
 *   after a delay, at most `maxHandlingFailures` handlings in all, then a HANDLING_FAILED dead
 *   letter (see `handlingFailed`).
 *
 * Messages (up to the prefetch) are validated concurrently but stored in the order they
 * arrived, so one deployment's jobs keep their order. The store commits the writes of one
 * event-loop turn together, so a burst of messages is stored in a few transactions.
 */
export class ExecuteIntake {
  /** Settles once the previous message's store write was issued (not committed). */
  private previous: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: ExecuteConsumerDeps) {}

  /** The consumer's `handle`: resolves once this message is settled (acked, retried or dead-lettered). */
  async handle(msg: ConsumeMessage, delivery: Delivery): Promise<void> {
    const header = msg.properties.headers?.traceparent;
    const trace = (this.deps.tracing ?? NO_TRACING).intake("amqp", typeof header === "string" ? header : null);
    const decided = decide(msg, this.deps, trace).then(
      (decision) => ({ decision }),
      (error: unknown) => ({ error }),
    );
    const before = this.previous;
    const issued = (async () => {
      const outcome = await decided;
      await before;
      return "decision" in outcome && "job" in outcome.decision ? { ...outcome, write: this.deps.store.createJob(outcome.decision.job) } : outcome;
    })();
    this.previous = issued.catch(() => undefined);
    const outcome = await issued;
    try {
      if ("error" in outcome) throw outcome.error;
      const { decision } = outcome;
      if (!("job" in decision)) {
        trace.end({ state: "dead-lettered" });
        delivery.ack();
        if (decision.log) this.deps.logger.info(decision.log);
        return;
      }
      const { job, created } = await (outcome as { write: Promise<{ job: Job; created: boolean }> }).write;
      trace.end({ jobId: job.id, created, state: job.state });
      delivery.ack();
      this.logStored(job, created, decision.rejectedFields);
    } catch (err) {
      trace.end({ error: err });
      await handlingFailed(msg, delivery, err, this.deps);
    }
  }

  private logStored(job: Job, created: boolean, rejectedFields: string | null): void {
    if (!created) return this.deps.logger.info(`🔄 execute.queue redelivered ${job.state === "rejected" ? "rejected " : ""}job ${job.id}: already stored, acked`);
    if (job.state !== "rejected") return this.deps.logger.info(`✅ job ${job.id} queued (${job.type}${job.deploymentId ? `, deployment ${job.deploymentId}` : ""}, via amqp)`);
    amqpMetrics.rejected.inc();
    this.deps.logger.info(`❌ job ${job.id} rejected (deployment ${job.deploymentId}): ${rejectedFields}`);
  }
}

/** One message on its own (tests). */
export function handleExecuteMessage(msg: ConsumeMessage, delivery: Delivery, deps: ExecuteConsumerDeps): Promise<void> {
  return new ExecuteIntake(deps).handle(msg, delivery);
}

/**
 * Bounded retries. RabbitMQ classic queues (execute.queue is declared by the backend, with
 * no arguments) carry no delivery count and a nack cannot change a message's headers, so
 * after the delay a copy is published straight to execute.queue with FAILURES_HEADER one
 * higher — confirmed — and only then is the original acked. A crash between the two leaves
 * both: harmless, the job key (jobId / idempotencyKey / original messageId / createdAt hash)
 * makes the second one a redelivery of the same job. The failed handling that reaches
 * `maxHandlingFailures` dead-letters the message instead (stored + execute.dlq, as every
 * dead letter). If the copy or the dead letter cannot be written (broker or store down), the
 * original is nacked with requeue after the delay and keeps its count.
 */
export async function handlingFailed(msg: ConsumeMessage, delivery: Delivery, err: unknown, deps: ExecuteConsumerDeps): Promise<void> {
  const failures = handlingFailures(msg) + 1;
  const last = lastError(err, msg, deps);
  const what = describeMessage(msg);
  const delay = () => new Promise((resolve) => setTimeout(resolve, deps.requeueDelayMs));
  if (failures >= deps.maxHandlingFailures) {
    try {
      await deadLetter(msg, "HANDLING_FAILED", `handling failed ${failures} times; last error ${last}`, deps, { handlingFailures: failures });
      delivery.ack();
      deps.logger.error(`❌ execute.queue message ${what} dead-lettered: handling failed ${failures} times (last error ${last})`);
      return;
    } catch (dlErr) {
      deps.logger.warn(`⚠️ execute.queue message ${what} could not be dead-lettered (${describeError(dlErr).type}); 🔄 requeued in ${deps.requeueDelayMs} ms`);
      await delay();
      delivery.nack(true);
      return;
    }
  }
  deps.logger.warn(`🔄 execute.queue message ${what} handling failed (${failures} of ${deps.maxHandlingFailures}: ${last}); retried in ${deps.requeueDelayMs} ms`);
  await delay();
  try {
    await deps.publish("", EXECUTE_QUEUE, msg.content, retryProperties(msg, failures));
    delivery.ack();
    amqpMetrics.retried.inc();
  } catch (pubErr) {
    // The broker is the problem: the original goes back as it was (the delay has passed).
    deps.logger.warn(`⚠️ execute.queue message ${what} could not be re-published (${describeError(pubErr).type}); 🔄 requeued`);
    delivery.nack(true);
  }
}

/** Failed handlings recorded on the message (0 for an original; a hostile value counts as 0). */
export function handlingFailures(msg: ConsumeMessage): number {
  const raw = Number(msg.properties.headers?.[FAILURES_HEADER]);
  return Number.isInteger(raw) && raw > 0 ? Math.min(raw, 1_000_000) : 0;
}

/** The messageId the sender gave (a retry copy carries it in a header), or null. */
export function originalMessageId(msg: ConsumeMessage): string | null {
  const headers = msg.properties.headers ?? {};
  if (headers[FAILURES_HEADER] !== undefined) {
    const original = headers[ORIGINAL_ID_HEADER];
    return typeof original === "string" ? original : null;
  }
  return typeof msg.properties.messageId === "string" ? msg.properties.messageId : null;
}

/** The copy keeps the original's properties (not userId: the broker checks it against our login). */
function retryProperties(msg: ConsumeMessage, failures: number): Options.Publish {
  const p = msg.properties;
  const original = originalMessageId(msg);
  const headers: Record<string, unknown> = { ...(p.headers ?? {}), [FAILURES_HEADER]: failures };
  delete headers[ORIGINAL_ID_HEADER];
  if (original !== null) headers[ORIGINAL_ID_HEADER] = original;
  const props: Options.Publish = { persistent: true, mandatory: true, headers };
  const copy = { contentType: p.contentType, contentEncoding: p.contentEncoding, correlationId: p.correlationId, replyTo: p.replyTo, type: p.type, appId: p.appId, timestamp: p.timestamp, priority: p.priority, messageId: original ?? undefined };
  for (const [k, v] of Object.entries(copy)) if (v !== undefined && v !== null) (props as Record<string, unknown>)[k] = v;
  return props;
}

/** `TYPE: message` of the last error, with the message's secrets blanked and its length bounded. */
function lastError(err: unknown, msg: ConsumeMessage, deps: ExecuteConsumerDeps): string {
  const type = errorType(err) ?? (err instanceof Error && err.name ? err.name : "Error");
  let message = describeError(err).message;
  // Every secret of the message, at any depth (an error message may echo any of them).
  for (const secret of secretValuesIn(msg.content.toString("utf8"), secretKeyTest(deps.secretFields))) message = message.split(secret).join(REDACTED);
  return `${type}: ${message.slice(0, 500)}`;
}

/** For log lines: the message's id, or the hash its dead letter would get. */
function describeMessage(msg: ConsumeMessage): string {
  const id = originalMessageId(msg);
  return id && KEY_PATTERN.test(id) ? id : deadLetterId(msg);
}

type Decision = { log: string | null } | { job: NewJob; rejectedFields: string | null };

async function decide(msg: ConsumeMessage, deps: ExecuteConsumerDeps, trace: IntakeTrace): Promise<Decision> {
  const dead = async (reason: string, detail: string) => ({ log: await deadLetter(msg, reason, detail, deps) });
  if (msg.content.length > deps.maxBytes) return dead("TOO_LARGE", `message of ${msg.content.length} bytes exceeds ${deps.maxBytes}`);
  const text = msg.content.toString("utf8");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    // The position only: the parser's own message quotes the text around it, which may be a secret.
    return dead("NOT_JSON", `not JSON (at ${jsonErrorLocation(text, err)})`);
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) return dead("NOT_AN_OBJECT", "the message must be a JSON object");
  // Storing a rejected job serializes it: a message nested this deep would overflow the stack on every redelivery.
  const deep = tooDeepPath(body);
  if (deep !== null) return dead("TOO_DEEP", `${deep} is nested deeper than ${MAX_JSON_DEPTH} levels`);

  const raw = body as Record<string, unknown>;
  const sent = originalMessageId(msg);
  const messageId = sent !== null && KEY_PATTERN.test(sent) ? sent : null;
  try {
    return { job: await deps.toNewJob(raw, messageId, trace), rejectedFields: null };
  } catch (err) {
    const type = errorType(err);
    if (type !== "VALIDATION_FAILED" && type !== "UNKNOWN_TASK_TYPE") throw err;
    const invalid = err as { type: string; message: string; data?: { fields?: FieldError[] } };
    const job = rejectedJob(raw, invalid, messageId, deps);
    if (!job) return dead("NO_DEPLOYMENT_ID", `invalid job without a usable deploymentId: ${invalid.message}`);
    return { job: { ...job, traceContext: trace.traceContext }, rejectedFields: (job.error?.fields ?? []).map((f) => f.field || "(message)").join(", ") };
  }
}

/** A `rejected` job (its final event sends the legacy failure result for its deployment), or null without a usable deploymentId. */
function rejectedJob(raw: Record<string, unknown>, err: { type: string; message: string; data?: { fields?: FieldError[] } }, messageId: string | null, deps: ExecuteConsumerDeps): NewJob | null {
  const deploymentId = typeof raw.deploymentId === "string" && DEPLOYMENT_ID.test(raw.deploymentId) ? raw.deploymentId : null;
  if (!deploymentId) return null;
  // Never store a secret: every secret-named key and task type secret field, at any depth, is left out.
  const params = redactValue(raw, secretKeyTest(deps.secretFields), "drop") as Record<string, unknown>;
  const type = typeof raw.type === "string" && raw.type.length > 0 && raw.type.length <= 63 ? raw.type : "build";
  const fields = (err.data?.fields ?? []).map((f) => ({ field: f.field, message: f.message }));
  return {
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
}

/** The same key as a valid job would get; without one, a hash of the message itself (so a redelivery maps to it). */
function rejectedJobId(raw: Record<string, unknown>, params: Record<string, unknown>, type: string, deploymentId: string, messageId: string | null): string {
  const key = [raw.jobId, raw.idempotencyKey, messageId].find((k): k is string => typeof k === "string" && KEY_PATTERN.test(k));
  if (key) return key;
  if (typeof raw.createdAt === "string") return deriveJobId({ type, deploymentId, createdAt: raw.createdAt });
  return `job_${createHash("sha256").update(JSON.stringify(params)).digest("hex").slice(0, 24)}`;
}

/** A redelivered poison message (or a retry copy of it) maps to the same dead letter. */
function deadLetterId(msg: ConsumeMessage): string {
  return `dl_${createHash("sha256").update(originalMessageId(msg) ?? "").update("\0").update(msg.content).digest("hex").slice(0, 24)}`;
}

/**
 * Stores the dead letter, publishes it to execute.dlq with a confirm; the caller acks. The body
 * is redacted structurally (every secret at any depth) before anything is cut; a body that
 * cannot be parsed — not JSON, too large to read, nested too deep — cannot be redacted, so it
 * is neither stored nor forwarded: the letter keeps its size, SHA-256 and reason instead.
 */
async function deadLetter(msg: ConsumeMessage, reason: string, detail: string, deps: ExecuteConsumerDeps, extra: Record<string, unknown> = {}): Promise<string> {
  const redacted = msg.content.length > deps.maxBytes ? null : redactJsonText(msg.content.toString("utf8"), secretKeyTest(deps.secretFields));
  const body = redacted ?? "";
  const messageId = originalMessageId(msg);
  const id = deadLetterId(msg);
  const about = { bodyKept: redacted !== null, bodyBytes: msg.content.length, bodySha256: createHash("sha256").update(msg.content).digest("hex"), ...(body.length > STORED_BODY_BYTES ? { bodyTruncated: true } : {}) };
  const stored = await deps.store.addDeadLetter({
    id,
    source: `amqp:${EXECUTE_QUEUE}`,
    reason,
    detail: detail.slice(0, 1000),
    body: body.slice(0, STORED_BODY_BYTES),
    properties: { messageId, routingKey: msg.fields.routingKey, exchange: msg.fields.exchange, redelivered: msg.fields.redelivered, contentType: msg.properties.contentType ?? null, ...about, ...extra },
    receivedAt: Date.now(),
  });
  await deps.publish("", DEAD_LETTER_QUEUE, Buffer.from(body), {
    persistent: true,
    messageId: id,
    headers: {
      "x-blacktree-reason": reason,
      "x-blacktree-detail": detail.slice(0, 1000),
      "x-blacktree-dead-letter-id": id,
      "x-original-message-id": messageId,
      "x-blacktree-body-kept": about.bodyKept,
      "x-blacktree-body-bytes": about.bodyBytes,
      "x-blacktree-body-sha256": about.bodySha256,
    },
  });
  if (!stored.created) return `🔄 execute.queue redelivered dead letter ${id} (${reason}): acked`;
  amqpMetrics.deadLettered.inc({ reason });
  return `⚠️ execute.queue message dead-lettered as ${id}: ${reason}`;
}
