import type { ServiceSchema } from "moleculer";
import type { Runtime } from "../lib/runtime";
import type { StoreChange } from "../lib/store/job-store";

/** Broadcast to the other nodes when this node's store committed something. */
export const STORE_CHANGED_EVENT = "blacktree.store.changed";
/** Commits within this window go out as one broadcast. */
const COALESCE_MS = 2;
const MAX_IDS = 200;

/**
 * Carries this node's commits to the other nodes of the cluster, so a job submitted on one
 * node is claimed at once on another instead of at the next sweep. Through the broker, not
 * PostgreSQL NOTIFY: a NOTIFY in every writing transaction serializes commits on a global
 * lock. Coalesced, so a burst of commits is one message. Without a transporter there is no
 * other node and nothing is sent.
 */
export function changesService(rt: Runtime): ServiceSchema {
  let unsubscribe: (() => void) | null = null;
  let pending: StoreChange | null = null;
  let timer: NodeJS.Timeout | undefined;
  return {
    name: "changes",
    started() {
      if (!rt.env.transporter) return;
      unsubscribe = rt.store.onCommit((change) => {
        pending ??= { jobIds: [], states: [], effects: false };
        if (pending.jobIds.length < MAX_IDS) pending.jobIds.push(...change.jobIds.slice(0, MAX_IDS - pending.jobIds.length));
        for (const s of change.states) if (!pending.states.includes(s)) pending.states.push(s);
        pending.effects ||= change.effects;
        timer ??= setTimeout(() => {
          const out = pending!;
          pending = null;
          timer = undefined;
          void this.broker.broadcast(STORE_CHANGED_EVENT, out);
        }, COALESCE_MS);
      });
    },
    stopped() {
      unsubscribe?.();
      clearTimeout(timer);
    },
  };
}
