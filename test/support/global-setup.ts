import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { brokerAnswers, startBystander } from "./bystander";
// eslint-disable-next-line @typescript-eslint/no-var-requires
const buildSdk: () => Promise<void> = require("./global-setup-sdk.js");

/**
 * Once per `jest` run: every temporary file of the run goes under one directory of its own
 * (TMPDIR, so test code, child processes and workers all use it), removed by the teardown;
 * and a bystander runs on the shared RabbitMQ for the whole run, checked by the teardown;
 * and the SDK's build is current for child processes (global-setup-sdk.js).
 */
export default async function globalSetup(): Promise<void> {
  await buildSdk();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-test-run-"));
  process.env.BLACKTREE_TEST_RUN_DIR = root;
  process.env.TMPDIR = root;
  if (process.env.TEST_NO_BYSTANDER !== "1" && (await brokerAnswers())) {
    (globalThis as { __bystander?: unknown }).__bystander = await startBystander({ onDefaultVhost: process.env.TEST_BYSTANDER_VHOST === "/" });
  } else {
    process.stdout.write("\n⚠️ no bystander on RabbitMQ this run (the broker does not answer, or TEST_NO_BYSTANDER=1)\n");
  }
}
