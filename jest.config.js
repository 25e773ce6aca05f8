/** Unit tests need nothing; integration tests start real brokers, gateways and child processes. */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  testTimeout: 60000,
  // One temporary directory per run (removed at the end) and a bystander on the shared RabbitMQ (checked at the end).
  globalSetup: "<rootDir>/test/support/global-setup.ts",
  globalTeardown: "<rootDir>/test/support/global-teardown.ts",
};
