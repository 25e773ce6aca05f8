/**
 * @blacktree/sdk/testkit — test helpers for plugin authors; runs under Jest (a peer
 * dependency): the launch-target conformance suite, `runTaskType` for task types, `poll`.
 */
export { targetConformance, ConformanceFailure, READY_LINE, STOP_SLACK_MS } from "./target-conformance";
export type { ConformanceOptions, ConformanceSetup, WorkloadKind } from "./target-conformance";
export { runTaskType, ENVELOPE_FIELDS } from "./task-type";
export type { TaskTypeRun, RunTaskTypeOptions } from "./task-type";
export { isAssertionError, poll } from "./poll";
