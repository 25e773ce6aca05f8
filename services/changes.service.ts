import type { Context, Service, ServiceSchema } from "moleculer";
import { metricsRegistry } from "../lib/metrics";
import type { Runtime } from "../lib/runtime";
import type { StoreChange } from "../lib/store/job-store";

interface PeerNode {
  id: string;
  local?: boolean;
  metadata?: { store?: string; startedAt?: number };
}

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
    actions: {
      /** This node's metrics as JSON, for a gateway summing the cluster's (GET /metrics). */
      metrics: { visibility: "public", handler: () => metricsRegistry.getMetricsAsJSON() },
    },
    events: {
      "$node.connected"(this: Service, ctx: Context<{ node: PeerNode }>) {
        this.refuseBeside(ctx.params.node);
      },
    },
    methods: {
      /**
       * An embedded SQLite store is one node's: a node with one that finds an older
       * orchestrator node on its transporter refuses to run beside it (they would claim and
       * publish without knowing of each other). Worker nodes own no store and are welcome.
       */
      refuseBeside(this: Service, other: PeerNode) {
        const mine = this.broker.metadata as { startedAt?: number };
        if (rt.store.dialect !== "sqlite" || other.local || !other.metadata?.store || (other.metadata.startedAt ?? 0) > (mine.startedAt ?? 0)) return;
        this.broker.fatal(`❌ node ${other.id} already runs an orchestrator on this transporter; this node's store is SQLite, which is one node's. Use DATABASE_URL (PostgreSQL) for every node of a cluster, or another NAMESPACE.`);
      },
    },
    started() {
      if (!rt.env.transporter) return;
      // Nodes already known (the event above may have fired before this service listened).
      for (const node of this.broker.registry.nodes.toArray() as PeerNode[]) this.refuseBeside(node);
      unsubscribe = rt.store.onCommit((change) => {
        pending ??= { jobIds: [], states: [], effects: false, wakeAt: null };
        if (pending.jobIds.length < MAX_IDS) pending.jobIds.push(...change.jobIds.slice(0, MAX_IDS - pending.jobIds.length));
        for (const s of change.states) if (!pending.states.includes(s)) pending.states.push(s);
        pending.effects ||= change.effects;
        // Unknown stays unknown; otherwise the earliest wake-up of the coalesced commits.
        if (change.wakeAt === undefined || pending.wakeAt === undefined) pending.wakeAt = undefined;
        else if (change.wakeAt !== null && (pending.wakeAt === null || change.wakeAt < pending.wakeAt)) pending.wakeAt = change.wakeAt;
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
