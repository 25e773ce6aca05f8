/**
 * Issue 13 — `priority` (up to 1000) and `target` were open to every role.
 *
 * Their bounds are a per-role policy (`callers` in plugins.config.json): by default a
 * submitter may lower its priority but not raise it above 0, and may not choose a target;
 * operators and admins may (target choice still needs `routing.allowJobTarget`).
 *
 * FAILS ON MAIN: a submitter's `priority: 1000` and `target: "controlled"` were accepted
 * (`expected 422, received 202`).
 */
import { useControlledTarget } from "../../support/controlled";
import { startNode, TEST_KEYS, TestNode } from "../../support/orchestrator";

let node: TestNode;
let lenient: TestNode;
const as = (role: keyof typeof TEST_KEYS) => ({ authorization: `Bearer ${TEST_KEYS[role]}` });
const fieldsOf = (res: { body: any }) => (res.body?.error?.fields ?? []).map((f: any) => f.field);

beforeAll(async () => {
  // Nothing here needs to run: keep launches out.
  const quiet = (c: any) => {
    useControlledTarget(c);
    c.limits.global = 0;
  };
  node = await startNode({ env: { DISPATCH_INTERVAL_MS: "600000" }, configure: quiet });
  lenient = await startNode({
    env: { DISPATCH_INTERVAL_MS: "600000" },
    configure: (c) => {
      quiet(c);
      (c as any).callers = { submitter: { maxPriority: 50, allowTarget: true } };
    },
  });
});
afterAll(async () => {
  await node?.stop();
  await lenient?.stop();
});

test("a submitter's priority is capped and it may not choose a target; operators may", async () => {
  const high = await node.http("POST", "/api/jobs", { type: "ctl", deploymentId: "p1", priority: 1000 }, as("submitter"));
  expect(high.status).toBe(422);
  expect(fieldsOf(high)).toEqual(["priority"]);
  expect(high.body.error.fields[0].message).toMatch(/at most 0 for the submitter role/);
  const targeted = await node.http("POST", "/api/jobs", { type: "ctl", deploymentId: "p2", target: "controlled" }, as("submitter"));
  expect(targeted.status).toBe(422);
  expect(fieldsOf(targeted)).toEqual(["target"]);
  expect((await node.http("POST", "/api/jobs", { type: "ctl", deploymentId: "p3", priority: -5 }, as("submitter"))).status).toBe(202);
  const operator = await node.http("POST", "/api/jobs", { type: "ctl", deploymentId: "p4", priority: 1000, target: "controlled" }, as("operator"));
  expect(operator.status).toBe(202);
  expect(operator.body.job).toMatchObject({ priority: 1000, target: "controlled" });
});

test("the per-role policy is configuration: callers.submitter.maxPriority and allowTarget", async () => {
  expect((await lenient.http("POST", "/api/jobs", { type: "ctl", deploymentId: "l1", priority: 50, target: "controlled" }, as("submitter"))).status).toBe(202);
  const over = await lenient.http("POST", "/api/jobs", { type: "ctl", deploymentId: "l2", priority: 51 }, as("submitter"));
  expect(over.status).toBe(422);
  expect(over.body.error.fields[0].message).toMatch(/at most 50/);
});
