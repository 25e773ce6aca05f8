import type { ServiceBroker } from "moleculer";
import type { JobEvent } from "../jobs/model";
import { eventView } from "../jobs/model";
import { isFinal, isJobState } from "../jobs/states";
import { jobMetrics } from "../metrics";
import type { JobStore } from "../store/job-store";
import { NO_TRACING, type Tracing } from "../tracing";
import type { JobIdentities } from "./job-identities";
import type { StatusSink } from "./sink";

/** States an attempt runs in: a transition out of one ends the attempt. */
const RUNNING = new Set(["launching", "running"]);

/**
 * Moleculer events: `job.<state>` for every transition and `job.event` for every row; also
 * counts transitions and, with tracing, records each attempt's run span and the final
 * state's publish span (this drain runs once per cluster, under its lease).
 */
export function moleculerSink(broker: ServiceBroker, identities: JobIdentities, tracing: Tracing = NO_TRACING, store?: JobStore): StatusSink {
  /** When each attempt was claimed (its `job.launching` event), until it ends: bounded. */
  const claimedAt = new Map<string, { at: number; target: string | null }>();
  return {
    name: "moleculer-events",
    async deliver(events, delivered) {
      for (const e of events) await publish(e);
      await delivered(events[events.length - 1].seq);
    },
  };

  async function publish(e: JobEvent) {
    const payload = eventView(e);
    await broker.broadcast("job.event", payload);
    if (e.to && isJobState(e.to)) {
      const job = await identities.of(e);
      if (tracing.enabled && job) await traceAttempt(e, job.traceContext);
      const final = isFinal(e.to);
      const send = () => broker.broadcast(`job.${e.to}`, payload);
      if (final && job) await tracing.publish(job.traceContext, { jobId: e.jobId, state: e.to, sink: "moleculer" }, send);
      else await send();
      jobMetrics.transitions.inc({ to: e.to, type: job?.type ?? "" });
      if (job && final) jobMetrics.duration.observe({ type: job.type, state: e.to }, (e.at - job.createdAt) / 1000);
    }
  }

  async function traceAttempt(e: JobEvent, traceContext: string | null) {
    if (e.attempt === null || e.attempt < 1) return;
    const key = `${e.jobId}:${e.attempt}`;
    if (e.kind === "job.launching") {
      claimedAt.set(key, { at: e.at, target: typeof e.data.target === "string" ? e.data.target : null });
      if (claimedAt.size > 10_000) claimedAt.delete(claimedAt.keys().next().value as string);
      return;
    }
    if (!e.from || !RUNNING.has(e.from) || RUNNING.has(e.to!)) return;
    // A drain that took over mid-attempt (another node claimed it) reads the claim time.
    const claim = claimedAt.get(key) ?? (await store?.getAttempt(e.jobId, e.attempt).then((a) => a && { at: a.launchedAt, target: a.target }));
    claimedAt.delete(key);
    const startedAt = claim?.at ?? e.at;
    const target = claim?.target ?? null;
    tracing.attemptEnded({ traceContext, jobId: e.jobId, attempt: e.attempt, target, startedAt, endedAt: e.at, state: e.to! });
  }
}
