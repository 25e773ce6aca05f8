/**
 * The plugin SDK's public types and helpers, as the orchestrator's own code imports them.
 * They live in the SDK package (packages/sdk, `@blacktree/sdk`); this module re-exports
 * it so the engine and services keep importing from here.
 */
export * from "@blacktree/sdk";
