import type { Routing } from "../config/plugins-config";

/**
 * The target to try after a retryable launch failure on `current`: the next one in
 * `routing.fallback[origin]`, where origin is the job's routed target. Null at the end
 * of the list, or when the job has no fallback.
 */
export function nextFallbackTarget(routing: Pick<Routing, "fallback">, origin: string | null, current: string): string | null {
  const start = origin ?? current;
  const chain = [start, ...(routing.fallback[start] ?? [])];
  const at = chain.indexOf(current);
  return at === -1 ? null : chain[at + 1] ?? null;
}

/**
 * The launch key on a fallback target: `<jobId>:<attempt>@<target>`. A fallback launch
 * keeps its attempt number (same callback token, same history), but never reuses the
 * first target's key: if the first launch did happen unheard (a timeout, a dropped
 * answer), its worker stays keyed `<jobId>:<attempt>`, which no live attempt owns any
 * more, so orphan reaping stops it instead of letting two workers run one attempt.
 */
export function fallbackKey(jobId: string, attempt: number, target: string): string {
  return `${jobId}:${attempt}@${target}`;
}
