import type { LaunchRequest, TargetHandle, TargetStatus } from "../plugins/sdk";

/**
 * The launch targets as the engine sees them: a local call in tests, `targets.<name>`
 * over the broker in a node (so a target may live on the node that holds its credentials).
 */
export interface TargetClient {
  launch(target: string, req: LaunchRequest, timeoutMs: number): Promise<TargetHandle>;
  /** One status per handle it knows, matched by key. */
  inspect(target: string, handles: TargetHandle[]): Promise<TargetStatus[]>;
  stop(target: string, handle: TargetHandle, reason: string): Promise<void>;
  /** The worker's last log lines (bounded); empty when the target keeps none. */
  logs(target: string, handle: TargetHandle): Promise<string[]>;
  /** Secrets the target adds to a worker's one-time fetch (registry credentials); empty when it has none. */
  workerSecrets(target: string, key: string): Promise<Record<string, string>>;
  /** Launch keys of every worker the target runs, or null when it cannot list them. */
  list(target: string): Promise<string[] | null>;
}

/** How long each kind of target call may take before the engine gives up on it. */
export const TARGET_CALL_TIMEOUTS = {
  launch: 60_000,
  inspect: 30_000,
  stop: 120_000,
  logs: 10_000,
  workerSecrets: 30_000,
  list: 30_000,
} as const;
