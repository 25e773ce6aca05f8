/** Test helpers for plugin authors (`blacktree-orchestrator/testkit`); runs under Jest. */
export { targetConformance } from "./target-conformance";
export type { ConformanceOptions, ConformanceSetup, WorkloadKind } from "./target-conformance";
export { isAssertionError, poll } from "./poll";
