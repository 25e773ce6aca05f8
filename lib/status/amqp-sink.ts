import type { AmqpLink } from "../amqp/amqp-link";
import { amqpMetrics } from "../amqp/amqp-metrics";
import { EXCHANGE, RECEIPTS_QUEUE, RESULT_KEY, STATUS_KEY } from "../amqp/topology";
import type { Attempt, JobEvent } from "../jobs/model";
import type { JobIdentities, JobIdentity } from "./job-identities";
import type { JobStore } from "../store/job-store";
import type { StatusSink } from "./sink";
import { NO_TRACING, type Tracing } from "../tracing";
import { isFinalEvent, legacyResult, statusEvent } from "./views";

/** A result's message id: the same on every retry, so its receipt can be recognized. */
const resultMessageId = (e: JobEvent) => `result.${e.jobId}.${e.seq}`;

/**
 * RabbitMQ: every event on `api.status`; on a final state of a job that came from
 * execute.queue (`source: amqp`) the legacy result on `api.result` (persistent, mandatory,
 * confirmed). REST jobs and follow-ups publish no legacy result: the backend's results queue
 * takes only answers to its own messages, so no REST caller can place a result there for
 * any deployment. Batches are pipelined and the cursor moves to the end of the confirmed prefix.
 *
 * Results stay exactly-once for the backend across reconnects and restarts: a result
 * whose confirm was lost may still have reached the queues. Each result also lands in
 * our receipts queue; before sending again after a failure (or after a start), the sink
 * reads the receipts and skips the results already routed. The receipts queue is purged
 * after every fully confirmed batch, so it only ever holds the batch in flight.
 */
export function amqpSink(link: AmqpLink, store: JobStore, identities: JobIdentities, tracing: Tracing = NO_TRACING): StatusSink {
  let inDoubt = true; // after a start, the previous process may have left results unconfirmed
  let routed = new Set<string>();

  /**
   * Adds what the receipts show routed to what is known. Receipts stay unacked until a
   * batch is fully confirmed, so a crash in between leaves them for the next start.
   */
  async function readReceipts(): Promise<void> {
    await link.withChannel(async (ch) => {
      for (;;) {
        const msg = await ch.get(RECEIPTS_QUEUE, { noAck: false });
        if (!msg) break;
        if (msg.properties.messageId) routed.add(String(msg.properties.messageId));
      }
    });
    inDoubt = false;
  }

  /** The attempts whose logs the batch's legacy results carry, in one read. */
  async function resultAttempts(events: JobEvent[]): Promise<Map<string, Attempt>> {
    const refs = events.filter((e) => e.attempt && isFinalEvent(e)).map((e) => ({ jobId: e.jobId, attempt: e.attempt! }));
    const found = await store.getAttemptsOf(refs);
    return new Map(found.map((a) => [`${a.jobId}:${a.attempt}`, a]));
  }

  return {
    name: "amqp",
    async deliver(events, delivered) {
      if (inDoubt) await readReceipts();
      // Publish the whole batch first (one channel keeps the order), then collect confirms.
      const sends: Array<{ seq: number; confirmed: Promise<void> }> = [];
      let results = 0;
      const attempts = await resultAttempts(events);
      for (const e of events) {
        const job = await identities.of(e);
        const parts: Promise<void>[] = [link.publish(EXCHANGE, STATUS_KEY, json(statusEvent(e, job)), { persistent: true, contentType: "application/json", messageId: `status.${e.seq}` })];
        if (job && isFinalEvent(e) && publishesLegacyResult(job)) {
          const messageId = resultMessageId(e);
          if (routed.has(messageId)) {
            amqpMetrics.resultsSkipped.inc();
          } else {
            const attempt = e.attempt ? (attempts.get(`${e.jobId}:${e.attempt}`) ?? null) : null;
            results += 1;
            const send = () => link.publish(EXCHANGE, RESULT_KEY, json(legacyResult(e, job, attempt)), { persistent: true, mandatory: true, contentType: "application/json", messageId });
            parts.push(tracing.publish(job.traceContext, { jobId: e.jobId, state: e.to ?? "", sink: "amqp api.result" }, send));
          }
        }
        const confirmed = Promise.all(parts).then(() => undefined);
        confirmed.catch(() => undefined); // judged below, in order
        sends.push({ seq: e.seq, confirmed });
      }
      let last: number | null = null;
      let failure: unknown = null;
      for (const s of sends) {
        try {
          await s.confirmed;
          if (failure === null) last = s.seq;
        } catch (err) {
          failure ??= err;
        }
      }
      if (last !== null) await delivered(last);
      if (failure !== null) {
        inDoubt = true;
        throw failure;
      }
      // Everything confirmed: no result of this batch is in doubt any more.
      if (results > 0 || routed.size > 0) {
        await link.withChannel(async (ch) => {
          ch.ackAll(); // the receipts read (this channel consumes nothing else)
          await ch.purgeQueue(RECEIPTS_QUEUE);
        });
      }
      routed = new Set();
    },
  };
}

/** Only answers to the backend's own messages go to its results queue. */
export function publishesLegacyResult(job: Pick<JobIdentity, "source">): boolean {
  return job.source === "amqp";
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}
