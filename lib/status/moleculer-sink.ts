import type { ServiceBroker } from "moleculer";
import type { JobEvent } from "../jobs/model";
import { eventView } from "../jobs/model";
import { isFinal, isJobState } from "../jobs/states";
import { jobMetrics } from "../metrics";
import type { JobIdentities } from "./job-identities";
import type { StatusSink } from "./sink";

/** Moleculer events: `job.<state>` for every transition and `job.event` for every row; also counts transitions. */
export function moleculerSink(broker: ServiceBroker, identities: JobIdentities): StatusSink {
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
      await broker.broadcast(`job.${e.to}`, payload);
      const job = await identities.of(e);
      jobMetrics.transitions.inc({ to: e.to, type: job?.type ?? "" });
      if (job && isFinal(e.to)) jobMetrics.duration.observe({ type: job.type, state: e.to }, (e.at - job.createdAt) / 1000);
    }
  }
}
