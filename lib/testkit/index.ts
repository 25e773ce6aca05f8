/** `blacktree-orchestrator/testkit`: the SDK's testkit (`@blacktree/sdk/testkit`), kept for plugins written against it. */
export * from "@blacktree/sdk/testkit";
