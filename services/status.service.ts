import type { ServiceSchema } from "moleculer";
import { describeError } from "../lib/errors";
import type { JobEvent } from "../lib/jobs/model";
import { eventView } from "../lib/jobs/model";
import { isJobState, isFinal } from "../lib/jobs/states";
import { jobMetrics } from "../lib/metrics";
import type { Runtime } from "../lib/runtime";

const SINK = "moleculer-events";
const BATCH = 200;
/** Fallback poll: wake-ups come with `outbox.written`, but another node's writes may not reach us. */
const POLL_MS = 500;

/**
 * Drains the outbox in commit order to Moleculer events: `job.<state>` for every
 * transition and `job.event` for every row. The cursor moves only after a batch went
 * out, so a crash re-sends (at least once) and never skips.
 */
export function statusService(rt: Runtime): ServiceSchema {
  let timer: NodeJS.Timeout | undefined;
  let draining = false;
  let again = false;

  return {
    name: "status",
    events: {
      "outbox.written"(this: any) {
        this.drain();
      },
    },
    methods: {
      async drain(this: any) {
        if (draining) {
          again = true;
          return;
        }
        draining = true;
        try {
          do {
            again = false;
            let cursor = await rt.store.getCursor(SINK);
            const events: JobEvent[] = await rt.store.readEvents(cursor, BATCH);
            for (const e of events) {
              await this.publish(e);
              cursor = e.seq;
            }
            if (events.length) await rt.store.setCursor(SINK, cursor);
            if (events.length === BATCH) again = true;
          } while (again);
        } catch (err) {
          this.logger.warn(`⚠️ status drain paused: ${describeError(err).message}`);
        } finally {
          draining = false;
        }
      },
      async publish(this: any, e: JobEvent) {
        const payload = eventView(e);
        await this.broker.broadcast("job.event", payload);
        if (e.to && isJobState(e.to)) {
          await this.broker.broadcast(`job.${e.to}`, payload);
          const job = e.from === null || isFinal(e.to) ? await rt.store.getJob(e.jobId) : null;
          jobMetrics.transitions.inc({ to: e.to, type: job?.type ?? "" });
          if (job && isFinal(e.to)) jobMetrics.duration.observe({ type: job.type, state: e.to }, (e.at - job.createdAt) / 1000);
        }
      },
    },
    started(this: any) {
      timer = setInterval(() => this.drain(), POLL_MS);
      this.drain();
    },
    stopped() {
      clearInterval(timer);
    },
  };
}
