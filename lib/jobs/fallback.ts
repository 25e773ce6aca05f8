import type { Routing } from "../config/plugins-config";

/**
 * The targets an attempt may try, in order: the job's routed target, then its
 * `routing.fallback` list (config loading refuses repeats, so each is tried once).
 */
export function fallbackChain(routing: Pick<Routing, "fallback">, origin: string): string[] {
  return [...new Set([origin, ...(routing.fallback[origin] ?? [])])];
}

/**
 * The launch key on a fallback target: `<jobId>:<attempt>@<target>`. A fallback launch
 * keeps its attempt number (same history; its callback token is bound to the new key), but never reuses the
 * first target's key: if the first launch did happen unheard (a timeout, a dropped
 * answer), its worker stays keyed `<jobId>:<attempt>`, which no live attempt owns any
 * more, so orphan reaping stops it instead of letting two workers run one attempt.
 */
export function fallbackKey(jobId: string, attempt: number, target: string): string {
  return `${jobId}:${attempt}@${target}`;
}
