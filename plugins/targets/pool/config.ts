import type { ValidationSchema } from "@blacktree/sdk";

/** The `config` block of the pool target in plugins.config.json. */
export interface PoolTargetConfig {
  /** Labels every chosen worker node must carry (`{ "zone": "a" }`). */
  selector?: Record<string, string>;
  /** How long a call to a worker node may take (stop adds the node's own grace). */
  callTimeoutMs?: number;
  /** The worker nodes' service name. */
  workerService?: string;
}

export interface PoolTargetSettings {
  selector: Record<string, string>;
  callTimeoutMs: number;
  workerService: string;
}

/** A workload may narrow the choice further with this env variable: `gpu=true,zone=a`. */
export const SELECTOR_ENV = "BLACKTREE_POOL_SELECTOR";

export const poolTargetConfigSchema: ValidationSchema = {
  $$strict: true,
  selector: { type: "record", optional: true, key: { type: "string", empty: false }, value: { type: "string" } },
  callTimeoutMs: { type: "number", integer: true, positive: true, default: 10_000 },
  workerService: { type: "string", empty: false, default: "worker" },
};

export function resolveSettings(config: PoolTargetConfig): PoolTargetSettings {
  return { selector: config.selector ?? {}, callTimeoutMs: config.callTimeoutMs ?? 10_000, workerService: config.workerService ?? "worker" };
}
