/**
 * Issue 13 — requests with a wrong or no credential were never rate-limited (the limiter's
 * key was null), nor were `/api/worker/*` calls; and bodies were parsed before
 * authentication (an anonymous request with broken JSON got 400, not 401).
 *
 * Failed authentication is limited per address (BLACKTREE_AUTH_FAILURE_LIMIT per window;
 * over it, every request from that address is 429 until the window ends), worker calls per
 * launch key (BLACKTREE_RATE_LIMIT), and no body is read before the credential is checked.
 *
 * FAILS ON MAIN: the 4th and later wrong-key requests answered 401 (`expected 429`), a worker
 * token's 6th heartbeat answered 200 (`expected 429`), and anonymous broken JSON answered 400.
 */
import { randomUUID } from "node:crypto";
import { reportAsWorker, useControlledTarget, waitForEntry } from "../../support/controlled";
import { startNode, TEST_KEYS, TestNode } from "../../support/orchestrator";

let failing: TestNode;
let workers: TestNode;
let plain: TestNode;

beforeAll(async () => {
  failing = await startNode({ env: { BLACKTREE_AUTH_FAILURE_LIMIT: "3", BLACKTREE_RATE_LIMIT_WINDOW_MS: "60000" } });
  workers = await startNode({ env: { BLACKTREE_RATE_LIMIT: "5", BLACKTREE_RATE_LIMIT_WINDOW_MS: "60000" }, configure: useControlledTarget });
  plain = await startNode();
});
afterAll(async () => {
  await failing?.stop();
  await workers?.stop();
  await plain?.stop();
});

test("failed authentication is limited per address: after the limit, 429 with Retry-After, for a valid key too", async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await failing.http("GET", "/api/jobs", undefined, { authorization: `Bearer wrong-key-${i}-0123456789` })).status);
  statuses.push((await failing.http("GET", "/api/jobs", undefined, { authorization: "" })).status);
  statuses.push((await failing.http("POST", "/api/worker/started", {}, { authorization: "Bearer not.a-token" })).status);
  expect(statuses).toEqual([401, 401, 401, 429, 429]);
  const blocked = await failing.http("GET", "/api/jobs", undefined, { authorization: `Bearer ${TEST_KEYS.admin}`, "x-forwarded-for": "10.1.2.3" });
  expect(blocked.status).toBe(429);
  expect(blocked.body.error.type).toBe("RATE_LIMITED");
  expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  expect((await failing.http("GET", "/health", undefined, { authorization: "" })).status).toBe(200); // open routes stay open
});

test("worker calls are limited per launch key", async () => {
  const res = await workers.http("POST", "/api/jobs", { type: "ctl", deploymentId: `w-${randomUUID().slice(0, 8)}` });
  const key = `${res.body.job.id}:1`;
  await waitForEntry(workers.dataDir, (e) => e.op === "launched" && e.key === key);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push(await reportAsWorker(workers.dataDir, key, "heartbeat"));
  expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  await workers.http("POST", `/api/jobs/${res.body.job.id}/cancel`);
});

test("no body is read before the credential is checked", async () => {
  const anonymous = await plain.http("POST", "/api/jobs", "{ not json", { authorization: "" });
  expect(anonymous.status).toBe(401);
  const deep = await plain.http("POST", "/api/jobs", `{"a":${"[".repeat(100)}${"]".repeat(100)}}`, { authorization: "Bearer wrong-key-0123456789" });
  expect(deep.status).toBe(401);
  const worker = await plain.http("POST", "/api/worker/result", "{ not json", { authorization: "Bearer x.y" });
  expect(worker.status).toBe(401);
  // With a valid key the body is read, and broken JSON is 400 as before.
  expect((await plain.http("POST", "/api/jobs", "{ not json")).status).toBe(400);
});
