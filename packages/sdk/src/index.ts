/**
 * @blacktree/sdk — what a Blacktree Orchestrator plugin imports: the plugin API types,
 * `definePlugin` / `defineTaskType` / `defineTarget`, coded errors, the field checks the
 * built-in task types use, and helpers. The testkit is `@blacktree/sdk/testkit`, the
 * worker client `@blacktree/sdk/worker`. Guide: docs/plugins.md in the orchestrator.
 */
export { PLUGIN_API_VERSION } from "./version";
export * from "./plugin";
export { PLUGIN_ERROR_CODES, PluginError, blacktreeError, errorType, isRetryable, fieldError } from "./errors";
export type { PluginErrorType, FieldError, ErrorData } from "./errors";
export { checkRepository, checkGitRef, checkRelativePath, isNonPublicIp } from "./checks";
export type { RepositoryPolicy } from "./checks";
export { checkRepositoryHost, repositoryHost, systemResolver, DEFAULT_ALLOWED_HOSTS } from "./repository-host";
export type { HostResolver, HostPolicy } from "./repository-host";
export { compileParams, deploymentIdRule, DEPLOYMENT_ID_PATTERN } from "./params";
export type { ParamsCheck } from "./params";
export { nodeWorkerCommand } from "./node-command";
export { WORKER_IMAGE_ENTRYPOINT, WORKER_NAME_PATTERN, REFERENCE_WORKERS, isReferenceWorker, workerImageCommand, containerRun, registryConfigSchema, REGISTRY_SECRET_NAMES, registryEnv, basicRegistrySecrets } from "./worker-image";
export type { ReferenceWorker, RegistryConfig, ContainerRun } from "./worker-image";
