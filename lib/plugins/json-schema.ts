/**
 * A task type's params schema (fastest-validator rules) as JSON Schema 2020-12, the dialect
 * OpenAPI 3.1 takes: what the OpenAPI document says a job of that type may carry. Rules
 * with no JSON Schema form (custom checkers, functions) become `{}` (anything): the
 * orchestrator still checks them when a job arrives.
 */
export type JsonSchema = Record<string, unknown>;

type Rule = string | RuleObject | Rule[];
interface RuleObject {
  type?: string;
  optional?: boolean;
  default?: unknown;
  nullable?: boolean;
  [key: string]: unknown;
}

/** An object schema: `properties` and `required` of a fastest-validator schema's top-level fields (`$$` keys are options, not fields). */
export function paramsToJsonSchema(schema: Record<string, unknown>): { properties: Record<string, JsonSchema>; required: string[] } {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [name, rule] of Object.entries(schema)) {
    if (name.startsWith("$$")) continue;
    const r = normalize(rule as Rule);
    properties[name] = ruleToJsonSchema(r);
    if (isRequired(r)) required.push(name);
  }
  return { properties, required };
}

export function ruleToJsonSchema(rule: Rule): JsonSchema {
  const r = normalize(rule);
  if (Array.isArray(r)) return { anyOf: r.map(ruleToJsonSchema) };
  const out = base(r);
  if (r.default !== undefined && isJson(r.default)) out.default = r.default;
  if (r.nullable) return typeof out.type === "string" ? { ...out, type: [out.type, "null"] } : { anyOf: [out, { type: "null" }] };
  return out;
}

function base(r: RuleObject): JsonSchema {
  switch (r.type) {
    case "string": {
      const s: JsonSchema = { type: "string" };
      if (typeof r.length === "number") s.minLength = s.maxLength = r.length;
      if (typeof r.min === "number") s.minLength = r.min;
      if (typeof r.max === "number") s.maxLength = r.max;
      if (r.empty === false && s.minLength === undefined) s.minLength = 1;
      if (r.pattern instanceof RegExp) s.pattern = r.pattern.source;
      else if (typeof r.pattern === "string") s.pattern = r.pattern;
      if (Array.isArray(r.enum)) s.enum = r.enum;
      return s;
    }
    case "number": {
      const s: JsonSchema = { type: r.integer ? "integer" : "number" };
      if (typeof r.min === "number") s.minimum = r.min;
      if (typeof r.max === "number") s.maximum = r.max;
      if (r.positive) s.exclusiveMinimum = 0;
      if (r.negative) s.exclusiveMaximum = 0;
      if (r.equal !== undefined) s.const = r.equal;
      return s;
    }
    case "boolean":
      return { type: "boolean" };
    case "enum":
      return { enum: Array.isArray(r.values) ? r.values : [] };
    case "equal":
      return { const: r.value };
    case "email":
      return { type: "string", format: "email" };
    case "url":
      return { type: "string", format: "uri" };
    case "uuid":
      return { type: "string", format: "uuid" };
    case "date":
      return { type: "string", format: "date-time" };
    case "array": {
      const s: JsonSchema = { type: "array" };
      if (r.items !== undefined) s.items = ruleToJsonSchema(r.items as Rule);
      if (Array.isArray(r.enum)) s.items = { enum: r.enum };
      if (typeof r.min === "number") s.minItems = r.min;
      if (typeof r.max === "number") s.maxItems = r.max;
      if (typeof r.length === "number") s.minItems = s.maxItems = r.length;
      if (r.unique) s.uniqueItems = true;
      return s;
    }
    case "tuple":
      return { type: "array", ...(Array.isArray(r.items) ? { prefixItems: r.items.map((i) => ruleToJsonSchema(i as Rule)), items: false } : {}) };
    case "object": {
      const props = (r.props ?? r.properties) as Record<string, unknown> | undefined;
      if (!props) return { type: "object" };
      const { properties, required } = paramsToJsonSchema(props);
      return { type: "object", properties, ...(required.length ? { required } : {}), ...(r.strict === true ? { additionalProperties: false } : {}) };
    }
    case "record":
      return { type: "object", ...(r.value !== undefined ? { additionalProperties: ruleToJsonSchema(r.value as Rule) } : {}) };
    case "multi":
      return Array.isArray(r.rules) ? { anyOf: (r.rules as Rule[]).map(ruleToJsonSchema) } : {};
    default:
      // any, custom, function, class, …: no JSON form; the orchestrator checks them.
      return {};
  }
}

/** `"string|optional|max:5"` shorthand → a rule object; objects and arrays stay. */
function normalize(rule: Rule): RuleObject | Rule[] {
  if (Array.isArray(rule)) return rule;
  if (typeof rule !== "string") return rule ?? {};
  const [type, ...flags] = rule.split("|");
  const out: RuleObject = { type };
  for (const flag of flags) {
    const [k, v] = flag.split(":");
    out[k] = v === undefined ? true : v === "true" ? true : v === "false" ? false : Number.isNaN(Number(v)) ? v : Number(v);
  }
  return out;
}

function isRequired(r: RuleObject | Rule[]): boolean {
  if (Array.isArray(r)) return r.every((x) => isRequired(normalize(x)));
  return r.optional !== true && r.default === undefined;
}

function isJson(v: unknown): boolean {
  return v === null || ["string", "number", "boolean"].includes(typeof v) || (typeof v === "object" && !(v instanceof RegExp));
}
