/**
 * Issue 13 — `api.result` was published for every job, including REST jobs and `stop`s, so a
 * submitter could place results for any deploymentId on the backend's queue.
 *
 * Legacy results go out only for jobs that came from execute.queue; REST jobs (and
 * follow-ups) are on `api.status` only.
 *
 * FAILS ON MAIN: the backend's queue held results for the submitter's build and stop too:
 * `expected ["<backend deployment>"], received ["<backend deployment>", "<rest build>", "<rest stop>"]`.
 */
import { randomUUID } from "node:crypto";
import type { Channel } from "amqplib";
import { BACKEND_RESULTS, backendMessage, BackendClient } from "../../support/amqp";
import { useInstantTarget } from "../../support/instant";
import { lastSeq } from "../../support/outbox";
import { startNode, TEST_KEYS, TestNode } from "../../support/orchestrator";
import { createVhost, TestVhost } from "../../support/vhost";
import { waitFor } from "../../support/wait";

let vhost: TestVhost;
let backend: BackendClient;
let node: TestNode;
let watch: Channel;
const status: any[] = [];
const alice = { authorization: `Bearer ${TEST_KEYS.submitter}` };

beforeAll(async () => {
  vhost = createVhost("legacy-results");
  backend = await BackendClient.connect("test-legacy-results", vhost.url);
  watch = await backend.watchStatus((e) => status.push(e));
  node = await startNode({
    env: { AMQP_URL: vhost.url },
    configure: (c) => {
      useInstantTarget(c);
      c.routing.byType.stop = "instant";
    },
  });
});

afterAll(async () => {
  try {
    await node?.stop();
    await watch?.close().catch(() => undefined);
    await backend?.close();
  } finally {
    vhost?.remove();
  }
});

test("only jobs from execute.queue publish a legacy result; a submitter's build and stop are on api.status only", async () => {
  const run = randomUUID().slice(0, 8);
  const fromBackend = `backend-${run}`;
  const restBuild = `rest-build-${run}`;
  const restStop = `rest-stop-${run}`;
  backend.publishJob(backendMessage(fromBackend), { messageId: `m-${run}` });
  await backend.confirmed();
  const build = await node.http("POST", "/api/jobs", { deploymentId: restBuild, repository: "o/r" }, alice);
  const stop = await node.http("POST", "/api/jobs", { type: "stop", deploymentId: restStop }, alice);
  expect([build.status, stop.status]).toEqual([202, 202]);

  const ids = [build.body.job.id, stop.body.job.id];
  await waitFor(async () => (await node.rt.store.listJobs({ deploymentId: fromBackend })).items[0]?.state === "succeeded", { message: "backend job succeeded" });
  for (const id of ids) await waitFor(async () => (await node.rt.store.getJob(id))?.state === "succeeded", { message: `job ${id} succeeded` });
  await waitFor(async () => (await node.rt.store.getCursor("amqp")) === (await lastSeq(node.rt.store)), { message: "amqp sink drained" });

  const results = (await backend.drain(BACKEND_RESULTS)).map((m) => JSON.parse(m.body));
  expect(results.map((r) => r.deploymentId).sort()).toEqual([fromBackend]);
  // The REST jobs' transitions, their final states included, are all on api.status.
  await waitFor(() => ids.every((id) => status.some((e) => e.jobId === id && e.to === "succeeded")), { message: "final api.status events of the REST jobs" });
});
