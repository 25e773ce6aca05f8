/**
 * `blacktree-orchestrator/sdk`: the plugin SDK, kept for plugins written against it.
 * New plugins import `@blacktree/sdk` (packages/sdk), which is what this re-exports.
 */
export * from "@blacktree/sdk";
