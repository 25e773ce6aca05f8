/** The testkit's `poll` (`@blacktree/sdk/testkit`), for the orchestrator's own tests. */
export { isAssertionError, poll } from "@blacktree/sdk/testkit";
