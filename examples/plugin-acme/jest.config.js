module.exports = { preset: "ts-jest", testEnvironment: "node", roots: ["<rootDir>/test"], testTimeout: 60000 };
