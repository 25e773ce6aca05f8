/**
 * Issue 13 — a REST `jobId`/`Idempotency-Key` shared the namespace of AMQP message ids and
 * of the `(type, deploymentId, createdAt)` hash, so a submitter could claim the id of a
 * message the backend had not sent yet: the backend's message then counted as a
 * redelivery of the submitter's job and made no job of its own.
 *
 * REST ids are derived per caller (`rest:<key name>:<key>`, hashed); AMQP ids stay exactly
 * as they were (messageId, jobId/idempotencyKey, the hash), so redeliveries still map to one job.
 *
 * FAILS ON MAIN: the backend's message `m-<run>` became no job (`expected source "amqp",
 * received "rest"` for job `m-<run>`), nor did the one whose createdAt alice had used.
 */
import { randomUUID } from "node:crypto";
import { restJobId } from "../../../lib/jobs/model";
import { backendMessage, BackendClient } from "../../support/amqp";
import { useInstantTarget } from "../../support/instant";
import { startNode, TEST_KEYS, TestNode } from "../../support/orchestrator";
import { createVhost, TestVhost } from "../../support/vhost";
import { waitFor } from "../../support/wait";

let vhost: TestVhost;
let backend: BackendClient;
let node: TestNode;
const as = (role: keyof typeof TEST_KEYS) => ({ authorization: `Bearer ${TEST_KEYS[role]}` });

beforeAll(async () => {
  vhost = createVhost("job-ids");
  backend = await BackendClient.connect("test-job-ids", vhost.url);
  node = await startNode({ env: { AMQP_URL: vhost.url }, configure: useInstantTarget });
});
afterAll(async () => {
  try {
    await node?.stop();
    await backend?.close();
  } finally {
    vhost?.remove();
  }
});

test("a submitter cannot claim the id of a message the backend sends later", async () => {
  const run = randomUUID().slice(0, 8);
  const messageId = `m-${run}`;
  const claimed = await node.http("POST", "/api/jobs", { deploymentId: `claim-${run}`, repository: "o/r", jobId: messageId }, as("submitter"));
  expect(claimed.status).toBe(202);
  expect(claimed.body.job.id).toBe(restJobId("alice", messageId));
  const header = await node.http("POST", "/api/jobs", { deploymentId: `claim-${run}`, repository: "o/r" }, { ...as("submitter"), "Idempotency-Key": `h-${run}` });
  expect(header.body.job.id).toBe(restJobId("alice", `h-${run}`));

  backend.publishJob(backendMessage(`backend-${run}`), { messageId });
  await backend.confirmed();
  const fromBackend = await waitFor(() => node.rt.store.getJob(messageId).then((j) => (j?.source === "amqp" ? j : null)), { message: `the backend's message ${messageId} became no job` });
  expect(fromBackend.deploymentId).toBe(`backend-${run}`);
});

test("a submitter cannot claim the (type, deploymentId, createdAt) hash of a backend message", async () => {
  const run = randomUUID().slice(0, 8);
  const message = backendMessage(`hash-${run}`);
  const { token: _t, ...copy } = message;
  const first = await node.http("POST", "/api/jobs", copy, as("submitter"));
  expect(first.status).toBe(202);
  backend.publishJob(message); // no messageId: its key is the hash of (type, deploymentId, createdAt)
  await backend.confirmed();
  await waitFor(async () => (await node.rt.store.listJobs({ deploymentId: `hash-${run}` })).items.some((j) => j.source === "amqp"), { message: "the backend's message became no job" });
  const jobs = (await node.rt.store.listJobs({ deploymentId: `hash-${run}` })).items;
  expect(jobs.map((j) => j.source).sort()).toEqual(["amqp", "rest"]);
});

test("job keys are per caller: the same key names one job per caller, and repeats return it", async () => {
  const key = `k-${randomUUID().slice(0, 8)}`;
  const body = { deploymentId: key, repository: "o/r", jobId: key };
  const alice = await node.http("POST", "/api/jobs", body, as("submitter"));
  const again = await node.http("POST", "/api/jobs", body, as("submitter"));
  const bob = await node.http("POST", "/api/jobs", body, as("submitter2"));
  expect([alice.status, again.status, bob.status]).toEqual([202, 200, 202]);
  expect(again.body.job.id).toBe(alice.body.job.id);
  expect(bob.body.job.id).toBe(restJobId("bob", key));
  expect(bob.body.job.id).not.toBe(alice.body.job.id);
});
