import { randomUUID } from "node:crypto";
import { REDIS_URL } from "../support/amqp";
import { startNode, TestNode } from "../support/orchestrator";

/** With REDIS_URL, gateways of one cluster count a key's requests against one limit. */
const nodes: TestNode[] = [];
afterAll(async () => {
  for (const n of nodes) await n.stop();
});

test("two gateways sharing Redis refuse a key's requests once their sum reaches the limit", async () => {
  // A namespace of the test's own: its Redis keys are apart from any other run's.
  const env = { REDIS_URL, NAMESPACE: `bt-rl-${randomUUID().slice(0, 8)}`, BLACKTREE_RATE_LIMIT: "6", BLACKTREE_RATE_LIMIT_WINDOW_MS: "60000", SERVICES: "gateway,validator,intake" };
  nodes.push(await startNode({ env }), await startNode({ env }));
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await nodes[i % 2].http("GET", "/api/jobs")).status);
  // Six in all pass, whichever gateway they reached; the rest are 429 on both.
  expect(statuses.filter((s) => s === 200)).toHaveLength(6);
  expect(statuses.slice(6)).toEqual([429, 429, 429, 429]);
});
