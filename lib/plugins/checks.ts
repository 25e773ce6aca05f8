/** The field checks task types share: they live in the SDK (`@blacktree/sdk`); re-exported for the orchestrator's own code. */
export { checkRepository, checkGitRef, checkRelativePath, fieldError, isNonPublicIp } from "@blacktree/sdk";
export type { RepositoryPolicy } from "@blacktree/sdk";
