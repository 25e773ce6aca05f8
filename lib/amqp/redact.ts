import { tooDeepPath } from "../jobs/json-shape";

/** `amqp://user:secret@host/vhost` → `amqp://user:***@host/vhost`: URLs are logged, passwords never. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
  }
}

export const REDACTED = "[redacted]";

/** Key names that hold secrets whatever task type a message claims to be. */
const SECRET_KEY = /token|secret|passw(or)?d|credential|api[-_]?key|private[-_]?key|authorization/i;

/**
 * Which keys are secret: every key named like one (`token`, `*password*`, `apiKey`, …) and
 * every `secretFields` entry of the loaded task types, at any depth, case-insensitively.
 */
export function secretKeyTest(secretFields: readonly string[] = []): (key: string) => boolean {
  const named = new Set(secretFields.map((f) => f.toLowerCase()));
  return (key) => named.has(key.toLowerCase()) || SECRET_KEY.test(key);
}

/**
 * A parsed value with every secret replaced (`mode: "mask"`, by REDACTED) or removed
 * (`mode: "drop"`), in objects and arrays at any depth. Iterative, and only for values whose
 * depth was checked (json-shape's MAX_JSON_DEPTH): callers use `redactJsonText`.
 */
export function redactValue(value: unknown, isSecret: (key: string) => boolean, mode: "mask" | "drop" = "mask"): unknown {
  const copy = (v: unknown): unknown => (Array.isArray(v) ? [...v] : v && typeof v === "object" ? { ...(v as object) } : v);
  const root = copy(value);
  const stack: unknown[] = [root];
  while (stack.length) {
    const node = stack.pop();
    if (!node || typeof node !== "object") continue;
    const entries = node as Record<string, unknown>;
    for (const key of Object.keys(entries)) {
      if (!Array.isArray(node) && isSecret(key)) {
        if (mode === "drop") delete entries[key];
        else entries[key] = REDACTED;
        continue;
      }
      const child = copy(entries[key]);
      entries[key] = child;
      if (child && typeof child === "object") stack.push(child);
    }
  }
  return root;
}

/**
 * A message body fit to keep or forward: parsed, its secrets masked at any depth, serialized
 * again. Null when it cannot be redacted — not JSON, or nested too deep to walk safely —
 * and so must not be kept at all (keep its size and hash instead).
 */
export function redactJsonText(text: string, isSecret: (key: string) => boolean): string | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (tooDeepPath(value) !== null) return null;
  return JSON.stringify(redactValue(value, isSecret));
}

/** Every string under a secret key, at any depth (to blank them in error messages), or none when the text does not parse. */
export function secretValuesIn(text: string, isSecret: (key: string) => boolean): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [];
  }
  if (tooDeepPath(value) !== null) return [];
  const out: string[] = [];
  const stack: unknown[] = [value];
  while (stack.length) {
    const node = stack.pop();
    if (!node || typeof node !== "object") continue;
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
      if (!Array.isArray(node) && isSecret(k)) collectStrings(v, out);
      else if (v && typeof v === "object") stack.push(v);
    }
  }
  return out.filter((s) => s.length >= 4);
}

function collectStrings(value: unknown, out: string[]): void {
  const stack = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === "string") out.push(v);
    else if (v && typeof v === "object") stack.push(...Object.values(v as object));
  }
}

/** A stored dead letter's body for replay: every placeholder of a redacted secret is dropped, never sent as a value. */
export function replayBody(text: string): string {
  try {
    const value = JSON.parse(text);
    if (tooDeepPath(value) === null) return JSON.stringify(dropPlaceholders(value));
  } catch {
    /* not JSON: replayed as stored */
  }
  return text;
}

function dropPlaceholders(value: unknown): unknown {
  const root = JSON.parse(JSON.stringify(value)) as unknown;
  const stack: unknown[] = [root];
  while (stack.length) {
    const node = stack.pop();
    if (!node || typeof node !== "object") continue;
    const entries = node as Record<string, unknown>;
    for (const key of Object.keys(entries)) {
      if (entries[key] === REDACTED && !Array.isArray(node)) delete entries[key];
      else if (entries[key] && typeof entries[key] === "object") stack.push(entries[key]);
    }
  }
  return root;
}
