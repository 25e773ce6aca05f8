import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ROOT, tempDir } from "../support/orchestrator";

/**
 * The conformance suite can fail, and says why in words: it is run (in a Jest of its own)
 * against targets that break its stop rules (test/sdk/fixtures/broken-targets.fixture.ts).
 */
interface Assertion {
  ancestorTitles: string[];
  title: string;
  status: string;
  failureMessages: string[];
}

test("a target that breaks a stop rule fails the suite with the rule in words", () => {
  const out = path.join(tempDir("blacktree-conformance-failures-"), "results.json");
  const config = {
    rootDir: ROOT,
    preset: "ts-jest",
    testEnvironment: "node",
    roots: ["<rootDir>/test/sdk/fixtures"],
    testMatch: ["**/*.fixture.ts"],
    moduleNameMapper: { "^@blacktree/sdk$": "<rootDir>/packages/sdk/src/index.ts", "^@blacktree/sdk/(testkit|worker)$": "<rootDir>/packages/sdk/src/$1/index.ts" },
  };
  const r = spawnSync(process.execPath, [require.resolve("jest/bin/jest"), "--config", JSON.stringify(config), "--runInBand", "--ci", "--testNamePattern", "ignores SIGTERM", "--json", "--outputFile", out], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME! },
  });
  expect(r.status).toBe(1); // the suite failed, as it must
  const results = JSON.parse(fs.readFileSync(out, "utf8")) as { testResults: Array<{ assertionResults: Assertion[] }> };
  const cases = results.testResults.flatMap((t) => t.assertionResults).filter((a) => a.status !== "pending");
  const failure = (suite: string) => {
    const found = cases.find((a) => a.ancestorTitles[0] === `${suite} target conformance`);
    expect(found?.status).toBe("failed");
    return found!.failureMessages.join("\n");
  };
  expect(failure("ready-too-early")).toMatch(/ready-too-early: stop must give a worker that ignores SIGTERM its grace \(1000 ms\) before killing it: it ended after \d+ ms/);
  expect(failure("slow-stop")).toMatch(/slow-stop: stop must end a worker that ignores SIGTERM within grace \+ 5 s \(grace 0 ms\): it took (5[5-9]\d\d|[6-9]\d\d\d) ms/);
}, 150_000);
