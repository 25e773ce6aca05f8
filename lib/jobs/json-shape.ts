/** Deepest nesting a job message may have: real jobs need 3 (`retry.retryOn[0]`). */
export const MAX_JSON_DEPTH = 32;

/**
 * The path of the first value nested deeper than `max`, or null. Iterative on purpose:
 * JSON.parse accepts 100,000 levels, while JSON.stringify and recursive walks overflow
 * the stack on them, so depth is checked before anything else touches a message.
 */
export function tooDeepPath(value: unknown, max = MAX_JSON_DEPTH): string | null {
  const stack: Array<{ v: unknown; path: string; depth: number }> = [{ v: value, path: "", depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (!v || typeof v !== "object") continue;
    if (depth >= max) return path || "(message)";
    for (const key of Object.keys(v)) stack.push({ v: (v as Record<string, unknown>)[key], path: path ? `${path}.${key}` : key, depth: depth + 1 });
  }
  return null;
}

/** Keys that could reach an object's prototype if anything downstream merged the message. */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

export function isForbiddenKey(key: string): boolean {
  return FORBIDDEN_KEYS.has(key);
}

/** The path of the first forbidden key, or null. Run after `tooDeepPath`, which bounds the recursion. */
export function forbiddenKeyPath(value: unknown, path = ""): string | null {
  if (!value || typeof value !== "object") return null;
  for (const key of Object.keys(value)) {
    const p = path ? `${path}.${key}` : key;
    if (FORBIDDEN_KEYS.has(key)) return p;
    const found = forbiddenKeyPath((value as Record<string, unknown>)[key], p);
    if (found !== null) return found;
  }
  return null;
}
