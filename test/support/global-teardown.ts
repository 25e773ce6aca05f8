import fs from "node:fs";
import type { Bystander } from "./bystander";

/** Removes the run's temporary directory, and fails the run if the tests touched the bystander's traffic. */
export default async function globalTeardown(): Promise<void> {
  const bystander = (globalThis as { __bystander?: Bystander }).__bystander;
  let problems: string[] = [];
  if (bystander) {
    problems = await bystander.check();
    await bystander.stop();
  }
  const root = process.env.BLACKTREE_TEST_RUN_DIR;
  if (root && fs.existsSync(root)) fs.rmSync(root, { recursive: true, force: true });
  if (problems.length) {
    throw new Error(`❌ the tests harmed another user's traffic on the shared RabbitMQ:\n  - ${problems.join("\n  - ")}`);
  }
  if (bystander) process.stdout.write(`✅ the bystander on ${bystander.vhost.name} was left untouched\n`);
}
