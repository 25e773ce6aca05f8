/** The package's main entry: the plugin SDK (the same as `blacktree-orchestrator/sdk`). */
export * from "./sdk";
