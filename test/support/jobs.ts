import type { NewJob } from "../../lib/jobs/model";
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS } from "../../lib/jobs/policy";

/** A queued job to store directly (store and engine tests), with the defaults validation would give. */
export function newJob(id: string, overrides: Partial<NewJob> = {}): NewJob {
  return {
    id,
    type: "build",
    state: "queued",
    deploymentId: null,
    priority: 0,
    target: null,
    concurrencyKey: null,
    params: {},
    secrets: {},
    timeouts: DEFAULT_TIMEOUTS,
    retry: DEFAULT_RETRY,
    source: "internal",
    parentId: null,
    error: null,
    deadline: null,
    runAfter: null,
    ...overrides,
  };
}
