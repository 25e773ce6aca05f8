import { createHash } from "node:crypto";

/** ECS `clientToken` and EC2 `ClientToken` take at most 64 characters. */
export const CLIENT_TOKEN_MAX = 64;

/**
 * The idempotency token of a launch: the key itself when it fits, else its SHA-256 in hex
 * (exactly 64 characters, deterministic), so every retry of one launch sends one token.
 */
export function launchToken(key: string): string {
  return key.length <= CLIENT_TOKEN_MAX ? key : createHash("sha256").update(key).digest("hex");
}

/** Tags every AWS worker carries: enough to find it from its key alone (orphans, restarts). */
export function workerTags(key: string, labels: Record<string, string>): Record<string, string> {
  return { ...labels, "blacktree.key": key };
}
