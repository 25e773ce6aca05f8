/** Unit tests need nothing; integration tests start real brokers, gateways and child processes. */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  testTimeout: 60000,
  // In this process the SDK is its TypeScript source; child processes load its build
  // (node_modules/@blacktree/sdk → packages/sdk/dist), which the global setup keeps current.
  moduleNameMapper: {
    "^@blacktree/sdk$": "<rootDir>/packages/sdk/src/index.ts",
    "^@blacktree/sdk/(testkit|worker)$": "<rootDir>/packages/sdk/src/$1/index.ts",
  },
  // One temporary directory per run (removed at the end) and a bystander on the shared RabbitMQ (checked at the end).
  globalSetup: "<rootDir>/test/support/global-setup.ts",
  globalTeardown: "<rootDir>/test/support/global-teardown.ts",
};
