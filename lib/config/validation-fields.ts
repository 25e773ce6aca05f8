import type { FieldError } from "../errors";
import { suggestion } from "../jobs/unknown-fields";

/**
 * fastest-validator's errors as field errors with a real path: a strict object's
 * forbidden keys (reported with no field, or the parent's) become one error per key,
 * `<parent>.<key>`, with the closest allowed key suggested. `prefix` names where the
 * validated value sits (`config` for a target's config).
 */
export function validationFields(errors: any[], prefix = ""): FieldError[] {
  const join = (...parts: Array<string | undefined>) => parts.filter((p) => p !== undefined && p !== "").join(".");
  const out: FieldError[] = [];
  for (const e of errors) {
    if (e.type === "objectStrict") {
      const allowed = String(e.expected ?? "").split(",").map((s) => s.trim()).filter(Boolean);
      for (const key of String(e.actual ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
        const near = suggestion(key, allowed);
        out.push({ field: join(prefix, e.field, key), message: `is not a known key${near ? `; did you mean '${near}'?` : ""}`, type: "unknownField", ...(near ? { expected: join(prefix, e.field, near) } : {}) });
      }
      continue;
    }
    out.push({ field: join(prefix, e.field) || "(root)", message: e.message, type: e.type });
  }
  return out;
}

/** "… at position 59" of a JSON.parse error as "line 3, column 3" of `text` (the end of the text when no position is given). */
export function jsonErrorLocation(text: string, err: unknown): string {
  const m = /position (\d+)/.exec(err instanceof Error ? err.message : String(err));
  const pos = m ? Math.min(Number(m[1]), text.length) : text.length;
  const before = text.slice(0, pos);
  const line = before.split("\n").length;
  const column = pos - (before.lastIndexOf("\n") + 1) + 1;
  return `line ${line}, column ${column}`;
}
