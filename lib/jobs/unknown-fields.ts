import { closest, distance } from "fastest-levenshtein";
import type { FieldError } from "../errors";

/**
 * Fields a job sent that no part of it knows: refused (422) rather than dropped, so a typo
 * (`dockerfilePath`, `retry.maxAttempt`, `priorty`) never passes silently. Each names the
 * field and, when one is close, the known name it was probably meant to be.
 */
export function unknownFields(raw: Record<string, unknown>, known: { top: readonly string[]; nested: Record<string, readonly string[]> }): FieldError[] {
  const out: FieldError[] = [];
  for (const key of Object.keys(raw)) {
    if (!known.top.includes(key)) {
      out.push(unknownField(key, known.top));
      continue;
    }
    const inner = known.nested[key];
    const value = raw[key];
    if (!inner || !value || typeof value !== "object" || Array.isArray(value)) continue;
    for (const k of Object.keys(value)) if (!inner.includes(k)) out.push(unknownField(k, inner, key));
  }
  return out;
}

function unknownField(key: string, known: readonly string[], parent?: string): FieldError {
  const field = parent ? `${parent}.${key}` : key;
  const near = suggestion(key, known);
  const suggested = near === null ? undefined : parent ? `${parent}.${near}` : near;
  return {
    field,
    message: `is not a known field${suggested ? `; did you mean '${suggested}'?` : ""}`,
    type: "unknownField",
    ...(suggested ? { expected: suggested } : {}),
  };
}

/** The closest known name, if it is close enough to be a typo (case differences count for nothing). */
export function suggestion(key: string, known: readonly string[]): string | null {
  if (known.length === 0) return null;
  const lower = key.toLowerCase();
  const byCase = known.find((k) => k.toLowerCase() === lower);
  if (byCase) return byCase;
  const best = closest(lower, known.map((k) => k.toLowerCase()));
  const d = distance(lower, best);
  return d <= Math.max(2, Math.floor(key.length / 4)) ? known.find((k) => k.toLowerCase() === best)! : null;
}
