import Ajv2020 from "ajv/dist/2020";
import Validator from "fastest-validator";
import { paramsToJsonSchema, ruleToJsonSchema } from "../../lib/plugins/json-schema";

/** fastest-validator rules as JSON Schema 2020-12: what the OpenAPI document says a task type's params are. */
describe("params schemas as JSON Schema", () => {
  test("types, bounds, patterns, defaults and required fields", () => {
    const schema = {
      $$strict: "remove",
      name: { type: "string", empty: false, max: 20, pattern: /^[a-z]+$/ },
      count: { type: "number", integer: true, min: 1, max: 9, default: 3 },
      mode: { type: "enum", values: ["a", "b"] },
      tags: { type: "array", items: "string", max: 4, optional: true },
      flag: "boolean|optional",
      note: { type: "string", nullable: true, optional: true },
      nested: { type: "object", props: { inner: { type: "number", positive: true } }, strict: true },
      either: [{ type: "string" }, { type: "number" }],
      anything: { type: "any" },
      custom: { type: "custom", check: () => true },
    };
    expect(paramsToJsonSchema(schema)).toEqual({
      properties: {
        name: { type: "string", minLength: 1, maxLength: 20, pattern: "^[a-z]+$" },
        count: { type: "integer", minimum: 1, maximum: 9, default: 3 },
        mode: { enum: ["a", "b"] },
        tags: { type: "array", items: { type: "string" }, maxItems: 4 },
        flag: { type: "boolean" },
        note: { type: ["string", "null"] },
        nested: { type: "object", properties: { inner: { type: "number", exclusiveMinimum: 0 } }, required: ["inner"], additionalProperties: false },
        either: { anyOf: [{ type: "string" }, { type: "number" }] },
        anything: {},
        custom: {},
      },
      required: ["name", "mode", "nested", "either", "anything", "custom"],
    });
  });

  test("what fastest-validator accepts and refuses, the JSON Schema does too (on values both can judge)", () => {
    const rule = { type: "string", min: 2, max: 5, pattern: /^[a-z]+$/ };
    const check = new Validator().compile({ v: rule });
    const validate = new Ajv2020({ strict: false }).compile(ruleToJsonSchema(rule));
    for (const v of ["ab", "abcde", "a", "abcdef", "AB", "a1"]) expect([v, validate(v)]).toEqual([v, check({ v }) === true]);
  });
});
