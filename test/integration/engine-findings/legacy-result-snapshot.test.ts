/**
 * Finding 7 — the legacy result is built from the job's current row at drain time.
 *
 * A job from execute.queue fails; an operator retries it and it succeeds. When the status
 * drain publishes later (it was down, or behind), each final event must publish what that
 * event recorded: first the failure, then the success.
 *
 * FAILS ON MAIN: the AMQP sink builds both legacy results from `store.getJob()` at drain
 * time, so the old failure is published as `success: true`, and then again:
 * `expected [false, true], received [true, true]`.
 */
import fs from "node:fs";
import { randomUUID } from "node:crypto";
import { BackendClient, BACKEND_RESULTS } from "../../support/amqp";
import { getJob, useControlledTarget, waitForEntry, waitState, writeControl } from "../../support/controlled";
import { startNode, TestNode } from "../../support/orchestrator";
import { createVhost, TestVhost } from "../../support/vhost";
import { waitFor } from "../../support/wait";

let vhost: TestVhost;
let backend: BackendClient;
const nodes: TestNode[] = [];

beforeAll(async () => {
  vhost = createVhost("snapshot");
  backend = await BackendClient.connect("test-snapshot", vhost.url);
});

afterAll(async () => {
  try {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await backend?.close();
  } finally {
    vhost?.remove();
    for (const n of nodes) fs.rmSync(n.dataDir, { recursive: true, force: true });
  }
});

test("each final event publishes the legacy result it recorded, even when the drain runs after an operator retry", async () => {
  // A node without the status service: the outbox fills, nothing is published yet.
  const worker = await startNode({ env: { AMQP_URL: vhost.url, SERVICES: "validator,intake,dispatcher,lifecycle,gateway,targets" }, configure: useControlledTarget });
  nodes.push(worker);
  const id = `snap-${randomUUID().slice(0, 8)}`;
  backend.publishJob({ type: "ctl", deploymentId: id, createdAt: new Date().toISOString() }, { messageId: id });
  await backend.confirmed();

  await waitForEntry(worker.dataDir, (e) => e.op === "launched" && e.key === `${id}:1`, { timeout: 15_000 });
  writeControl(worker.dataDir, { keys: { [`${id}:1`]: { exitNow: 3 } } });
  expect((await waitState(worker, id, ["failed"], { timeout: 15_000 })).job.error.message).toMatch(/3/);

  expect((await worker.http("POST", `/api/jobs/${id}/retry`)).status).toBe(200);
  await waitForEntry(worker.dataDir, (e) => e.op === "launched" && e.key === `${id}:2`, { timeout: 15_000 });
  writeControl(worker.dataDir, { keys: { [`${id}:2`]: { exitNow: 0 } } });
  await waitState(worker, id, ["succeeded"], { timeout: 15_000 });
  expect((await getJob(worker, id)).job.state).toBe("succeeded");
  await worker.stop();

  // The status node drains the outbox now, long after both final states.
  const status = await startNode({ dataDir: worker.dataDir, env: { AMQP_URL: vhost.url, SERVICES: "status" } });
  nodes.push(status);
  const collected: any[] = [];
  const results = await waitFor(async () => {
    const mine = (await backend.drain(BACKEND_RESULTS)).map((m) => JSON.parse(m.body)).filter((r) => r.deploymentId === id);
    collected.push(...mine);
    return collected.length >= 2 ? collected : null;
  }, { timeout: 15_000, message: "two legacy results" });
  expect(results.map((r) => r.success)).toEqual([false, true]);
  expect(results[0].error).toMatch(/3/);
  expect(results[1].error).toBeNull();
});
