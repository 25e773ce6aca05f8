import { createHash } from "node:crypto";

/** Docker's own limit is higher; 63 keeps names usable as host names and DNS labels. */
const MAX_NAME = 63;
const HASH_CHARS = 12;

/**
 * The container name of a launch key: deterministic (a second launch finds the first
 * container by name, and Docker refuses a duplicate name: 409), readable, and
 * collision-free: two keys that sanitize alike still differ in their hash suffix.
 */
export function containerName(prefix: string, key: string): string {
  const hash = createHash("sha256").update(key, "utf8").digest("hex").slice(0, HASH_CHARS);
  const room = MAX_NAME - prefix.length - HASH_CHARS - 2;
  const readable = key.toLowerCase().replace(/[^a-z0-9_.-]+/g, "-").replace(/^[^a-z0-9]+/, "").slice(0, Math.max(room, 0));
  return readable ? `${prefix}-${readable}-${hash}` : `${prefix}-${hash}`;
}

/** Container labels: the launch request's `blacktree.*` labels under the configured prefix, plus the key. */
export function containerLabels(prefix: string, key: string, requested: Record<string, string>): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [name, value] of Object.entries(requested)) {
    labels[name.startsWith("blacktree.") ? `${prefix}.${name.slice("blacktree.".length)}` : name] = value;
  }
  labels[keyLabel(prefix)] = key;
  return labels;
}

export const keyLabel = (prefix: string) => `${prefix}.key`;
