import {
  blacktreeError,
  type LaunchRequest,
  type LaunchTarget,
  type PluginCluster,
  type PluginContext,
  type TargetHandle,
  type TargetStatus,
} from "@blacktree/sdk";
import { poolTargetConfigSchema, resolveSettings, SELECTOR_ENV, type PoolTargetConfig, type PoolTargetSettings } from "./config";
import { describeSelector, matches, parseSelector } from "./selector";

export interface PoolHandle extends TargetHandle {
  key: string;
  /** The worker node that runs the workload. */
  nodeID: string;
}

interface WorkerStatus {
  nodeID: string;
  capacity: number;
  busy: number;
  labels: Record<string, string>;
}

/** Stop waits out the node's SIGTERM grace: allow for it. */
const STOP_TIMEOUT_MS = 120_000;

/**
 * Assigns each launch to a free worker node of the cluster (`npm run worker`) whose labels
 * match, and follows it there. The worker nodes are the record: a key is looked up on
 * them before it is assigned, so a repeated launch (or one after an orchestrator restart)
 * finds the same node instead of starting a second workload. A node that left the
 * cluster reports its attempts `lost`, so the lifecycle retries them elsewhere.
 */
export class PoolTarget implements LaunchTarget<PoolTargetConfig, PoolHandle> {
  readonly name = "pool";
  readonly configSchema = poolTargetConfigSchema;

  private settings: PoolTargetSettings = resolveSettings({});
  private readonly launching = new Map<string, Promise<PoolHandle>>();

  async init(config: PoolTargetConfig, ctx: PluginContext): Promise<void> {
    this.settings = resolveSettings(config ?? {});
    if (!ctx.cluster) throw blacktreeError("TARGET_CONFIG_INVALID", "the pool target needs a cluster (host it in a broker)", undefined, { retryable: false });
  }

  async launch(req: LaunchRequest, ctx: PluginContext): Promise<PoolHandle> {
    if (!req.key) throw blacktreeError("LAUNCH_FAILED", "cannot launch: the launch key is empty", undefined, { retryable: false });
    const pending = this.launching.get(req.key);
    if (pending) return pending;
    const launch = this.launchOnce(req, ctx);
    this.launching.set(req.key, launch);
    const forget = () => this.launching.delete(req.key); // afterwards the worker nodes answer
    launch.then(forget, forget);
    return launch;
  }

  /** One call per owning node; attempts on a node that left the cluster are lost. */
  async inspect(handles: PoolHandle[], ctx: PluginContext): Promise<TargetStatus[]> {
    const cluster = this.cluster(ctx);
    const byNode = new Map<string, string[]>();
    const statuses: TargetStatus[] = [];
    const unowned: string[] = [];
    for (const h of handles) {
      if (!h.nodeID) unowned.push(h.key);
      else if (!cluster.isNodeAvailable(h.nodeID)) statuses.push({ key: h.key, state: "lost", reason: `worker node ${h.nodeID} left the cluster` });
      else byNode.set(h.nodeID, [...(byNode.get(h.nodeID) ?? []), h.key]);
    }
    await Promise.all(
      [...byNode].map(async ([nodeID, keys]) => {
        try {
          statuses.push(...(await this.callNode<TargetStatus[]>(ctx, nodeID, "inspect", { keys })));
        } catch (err) {
          if (!cluster.isNodeAvailable(nodeID)) keys.forEach((key) => statuses.push({ key, state: "lost", reason: `worker node ${nodeID} left the cluster` }));
          else throw unreachable(`inspect on worker node ${nodeID}`, err); // no answer is not proof of loss
        }
      }),
    );
    if (unowned.length) statuses.push(...(await this.inspectEverywhere(unowned, ctx)));
    return statuses;
  }

  async stop(handle: PoolHandle, reason: string, ctx: PluginContext): Promise<void> {
    await this.launching.get(handle.key)?.catch(() => undefined);
    const cluster = this.cluster(ctx);
    // From the key alone (orphan reaping): every node is asked; stopping an unknown key is a no-op there.
    const nodes = handle.nodeID ? [handle.nodeID].filter((n) => cluster.isNodeAvailable(n)) : this.workerNodes(ctx);
    await Promise.all(nodes.map((nodeID) => this.callNode(ctx, nodeID, "stop", { key: handle.key, reason }, STOP_TIMEOUT_MS)));
  }

  async *logs(handle: PoolHandle, ctx: PluginContext): AsyncIterable<string> {
    const nodeID = handle.nodeID ?? (await this.findOwner(handle.key, ctx));
    if (!nodeID || !this.cluster(ctx).isNodeAvailable(nodeID)) return;
    const { lines } = await this.callNode<{ lines: string[] }>(ctx, nodeID, "logs", { key: handle.key });
    yield* lines;
  }

  async list(ctx: PluginContext): Promise<string[]> {
    const keys = await Promise.all(this.workerNodes(ctx).map(async (nodeID) => (await this.callNode<{ keys: string[] }>(ctx, nodeID, "list", {})).keys));
    return [...new Set(keys.flat())];
  }

  private async launchOnce(req: LaunchRequest, ctx: PluginContext): Promise<PoolHandle> {
    const owner = await this.findOwner(req.key, ctx);
    if (owner) return { key: req.key, nodeID: owner };
    const selector = { ...this.settings.selector, ...parseSelector(req.workload.env?.[SELECTOR_ENV]) };
    const candidates = (await this.statuses(ctx))
      .filter((w) => matches(w.labels, selector) && w.busy < w.capacity)
      .sort((a, b) => b.capacity - b.busy - (a.capacity - a.busy) || a.nodeID.localeCompare(b.nodeID));
    for (const worker of candidates) {
      try {
        const handle = await this.callNode<PoolHandle>(ctx, worker.nodeID, "launch", { req });
        ctx.logger.info(`🔄 assigned ${req.key} to worker node ${worker.nodeID}`);
        return handle;
      } catch (err) {
        // Filled up since we asked, or gone: the next candidate may take it. Anything else
        // (a bad workload, a timeout after which the node may have started it) ends this launch.
        const full = (err as { data?: { full?: unknown } })?.data?.full === true;
        if (!full && this.cluster(ctx).isNodeAvailable(worker.nodeID)) throw err;
        ctx.logger.warn(`⚠️ worker node ${worker.nodeID} did not take ${req.key}: ${(err as Error).message}`);
      }
    }
    throw blacktreeError("LAUNCH_FAILED", `cannot launch ${req.key}: no free worker node matches ${describeSelector(selector)}`, undefined, { retryable: true });
  }

  /** The node that already has this key (launched before, by this or an earlier orchestrator), if any. */
  private async findOwner(key: string, ctx: PluginContext): Promise<string | null> {
    const answers = await Promise.all(
      this.workerNodes(ctx).map(async (nodeID) => {
        const [status] = await this.callNode<TargetStatus[]>(ctx, nodeID, "inspect", { keys: [key] }).catch(() => [] as TargetStatus[]);
        return status && status.state !== "lost" ? nodeID : null;
      }),
    );
    return answers.find((n) => n !== null) ?? null;
  }

  private async inspectEverywhere(keys: string[], ctx: PluginContext): Promise<TargetStatus[]> {
    const best = new Map<string, TargetStatus>(keys.map((key) => [key, { key, state: "lost", reason: "no worker node knows this key" }]));
    for (const answer of await Promise.all(this.workerNodes(ctx).map((nodeID) => this.callNode<TargetStatus[]>(ctx, nodeID, "inspect", { keys })))) {
      for (const status of answer) if (status.state !== "lost") best.set(status.key, status);
    }
    return [...best.values()];
  }

  private async statuses(ctx: PluginContext): Promise<WorkerStatus[]> {
    const answers = await Promise.all(this.workerNodes(ctx).map((nodeID) => this.callNode<WorkerStatus>(ctx, nodeID, "status", {}).catch(() => null)));
    return answers.filter((s): s is WorkerStatus => s !== null);
  }

  private workerNodes(ctx: PluginContext): string[] {
    return [...new Set(this.cluster(ctx).nodesWithService(this.settings.workerService))];
  }

  private callNode<T = unknown>(ctx: PluginContext, nodeID: string, action: string, params: Record<string, unknown>, timeoutMs = this.settings.callTimeoutMs): Promise<T> {
    return this.cluster(ctx).call<T>(`${this.settings.workerService}.${action}`, params, { nodeID, timeoutMs });
  }

  private cluster(ctx: PluginContext): PluginCluster {
    if (!ctx.cluster) throw blacktreeError("TARGET_NOT_FOUND", "the pool target needs a cluster (host it in a broker)", undefined, { retryable: true });
    return ctx.cluster;
  }
}

function unreachable(what: string, err: unknown): Error {
  return blacktreeError("TARGET_NOT_FOUND", `${what} failed: ${(err as Error)?.message ?? String(err)}`, undefined, { retryable: true });
}

export function createPoolTarget(): PoolTarget {
  return new PoolTarget();
}
