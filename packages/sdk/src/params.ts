/**
 * How a task type's params schema is applied: the one function the orchestrator's loader
 * and the testkit share, so a task type tested with the testkit meets the same rules it
 * meets in the orchestrator.
 */
import Validator from "fastest-validator";
import type { ValidationSchema } from "fastest-validator";
import type { TaskType } from "./plugin";

/** 1-128 letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const DEPLOYMENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The `deploymentId` rule (required); every job may carry one, see `compileParams`. */
export const deploymentIdRule = {
  type: "string",
  pattern: DEPLOYMENT_ID_PATTERN,
  messages: { stringPattern: "The 'deploymentId' field must be 1-128 letters, digits or . _ -" },
} as const;

const validator = new Validator({ useNewCustomCheckerFunction: true });

/** A compiled params check: `true`, or the field errors (`field`, `message`, `type`, …). */
export type ParamsCheck = ReturnType<Validator["compile"]>;

/**
 * Compiles a task type's params schema as the orchestrator applies it: unknown fields are
 * removed (`$$strict: "remove"`), defaults filled in and `convert` honoured, and
 * `deploymentId` is kept as an optional string (the pattern above) unless the schema
 * declares it itself. Throws when the schema itself is invalid.
 */
export function compileParams(taskType: Pick<TaskType<any>, "params">): ParamsCheck {
  const schema: ValidationSchema = { $$strict: "remove", deploymentId: { ...deploymentIdRule, optional: true }, ...taskType.params };
  return validator.compile(schema);
}
