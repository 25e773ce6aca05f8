/** The repository host check lives in the SDK (`@blacktree/sdk`); re-exported for the orchestrator's own code. */
export { checkRepositoryHost, repositoryHost, systemResolver, DEFAULT_ALLOWED_HOSTS } from "@blacktree/sdk";
export type { HostResolver, HostPolicy } from "@blacktree/sdk";
