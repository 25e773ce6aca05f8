/**
 * @blacktree/sdk/testkit — test helpers for plugin authors: the launch-target conformance
 * suite (under Jest, a peer dependency: `@jest/globals` is required when it is called),
 * `runTaskType` for task types and `poll` (under any runner).
 */
export { targetConformance, ConformanceFailure, READY_LINE, STOP_SLACK_MS } from "./target-conformance";
export type { ConformanceOptions, ConformanceSetup, WorkloadKind } from "./target-conformance";
export { runTaskType, ENVELOPE_FIELDS } from "./task-type";
export type { TaskTypeRun, RunTaskTypeOptions } from "./task-type";
export { isAssertionError, poll } from "./poll";
