/** The public plugin SDK: what a third-party plugin imports (`blacktree-orchestrator/sdk`). */
export * from "./plugins/sdk";
export { checkRepository, checkGitRef, checkRelativePath, fieldError, isNonPublicIp } from "./plugins/checks";
export { checkRepositoryHost, repositoryHost, DEFAULT_ALLOWED_HOSTS } from "./plugins/repository-host";
export type { HostResolver } from "./plugins/repository-host";
export { blacktreeError, errorType, isRetryable } from "./errors";
export type { ErrorType, FieldError } from "./errors";
export type { Timeouts, RetryPolicy, FailureReason } from "./jobs/policy";
export type { JobResult } from "./jobs/model";
