/**
 * Issue 13 — inputs that passed silently: unknown fields were dropped (`dockerfilePath`
 * with a lower-case f built the default Dockerfile and succeeded; `retry.maxAttempt`,
 * `timeout`, `priorty` were ignored); `createdAt: "yesterday"` (part of the job key) was
 * accepted; `repository: "ext::sh -c id"` was refused as "must not contain spaces".
 *
 * Unknown fields are refused (422) naming each, with the closest known name; on
 * execute.queue `AMQP_UNKNOWN_FIELDS=drop` lets a backend's extra fields through, logged.
 * `createdAt` must be an ISO 8601 date-time. A transport helper is named as the reason.
 *
 * FAILS ON MAIN: each REST body below answered `202` (`expected 422`), the AMQP message with
 * `dockerfilePath` became a queued build, and the `ext::` refusal said "must not contain spaces".
 */
import { randomUUID } from "node:crypto";
import { backendMessage, BackendClient } from "../../support/amqp";
import { CaptureLogger } from "../../support/capture-logger";
import { useInstantTarget } from "../../support/instant";
import { startNode, TestNode } from "../../support/orchestrator";
import { createVhost, TestVhost } from "../../support/vhost";
import { waitFor } from "../../support/wait";

let vhost: TestVhost;
let lenientVhost: TestVhost;
let backend: BackendClient;
let lenientBackend: BackendClient;
let node: TestNode;
let lenient: TestNode;
const logger = new CaptureLogger({ level: "info" });
const run = randomUUID().slice(0, 8);
const build = (extra: Record<string, unknown> = {}) => ({ deploymentId: `silent-${run}`, repository: "o/r", ...extra });

beforeAll(async () => {
  vhost = createVhost("silent-inputs");
  lenientVhost = createVhost("silent-inputs-drop");
  backend = await BackendClient.connect("test-silent", vhost.url);
  lenientBackend = await BackendClient.connect("test-silent-drop", lenientVhost.url);
  node = await startNode({ env: { AMQP_URL: vhost.url }, configure: useInstantTarget });
  lenient = await startNode({ env: { AMQP_URL: lenientVhost.url, AMQP_UNKNOWN_FIELDS: "drop" }, configure: useInstantTarget, broker: { logger } });
});
afterAll(async () => {
  try {
    await node?.stop();
    await lenient?.stop();
    await backend?.close();
    await lenientBackend?.close();
  } finally {
    vhost?.remove();
    lenientVhost?.remove();
  }
});

const refusal = async (body: unknown) => {
  const res = await node.http("POST", "/api/jobs", body);
  return { status: res.status, fields: (res.body?.error?.fields ?? []) as Array<{ field: string; message: string; expected?: unknown }> };
};

test.each([
  ["dockerfilePath", build({ dockerfilePath: "docker/Dockerfile" }), "dockerfilePath", "dockerFilePath"],
  ["retry.maxAttempt", build({ retry: { maxAttempt: 3 } }), "retry.maxAttempt", "retry.maxAttempts"],
  ["timeout", build({ timeout: { runTimeout: 1000 } }), "timeout", "timeouts"],
  ["priorty", build({ priorty: 5 }), "priorty", "priority"],
  ["timeouts.runtimeout", build({ timeouts: { runtimeout: 1000 } }), "timeouts.runtimeout", "timeouts.runTimeout"],
])("an unknown field (%s) is refused, named, with the closest known name", async (_what, body, field, suggestion) => {
  const r = await refusal(body);
  expect(r.status).toBe(422);
  expect(r.fields).toEqual([expect.objectContaining({ field, expected: suggestion, message: expect.stringContaining(`did you mean '${suggestion}'`) })]);
});

test("several unknown fields are all named at once; a name close to nothing gets no suggestion", async () => {
  const r = await refusal(build({ dockerfilePath: "x", priorty: 1, zzzqqq: true }));
  expect(r.status).toBe(422);
  expect(r.fields.map((f) => f.field).sort()).toEqual(["dockerfilePath", "priorty", "zzzqqq"]);
  expect(r.fields.find((f) => f.field === "zzzqqq")!.message).not.toMatch(/did you mean/);
});

test("createdAt must be an ISO 8601 date-time", async () => {
  for (const createdAt of ["yesterday", "2025-13-01T00:00:00Z", "2025-07-09", "1720526400000"]) {
    const r = await refusal(build({ createdAt }));
    expect({ createdAt, status: r.status, fields: r.fields.map((f) => f.field) }).toEqual({ createdAt, status: 422, fields: ["createdAt"] });
  }
  expect((await node.http("POST", "/api/jobs", build({ createdAt: "2025-07-09T12:00:00.123+02:00" }))).status).toBe(202);
});

test("a transport helper in repository is refused for what it is, not for its spaces", async () => {
  for (const repository of ["ext::sh -c id", "ext::sh", "fd::3"]) {
    const r = await refusal(build({ repository }));
    expect(r.status).toBe(422);
    expect(r.fields[0].field).toBe("repository");
    expect(r.fields[0].message).toMatch(/transport/);
    expect(r.fields[0].message).not.toMatch(/spaces/);
  }
});

test("on execute.queue an unknown field makes a rejected job naming it", async () => {
  const id = `amqp-unknown-${run}`;
  backend.publishJob(backendMessage(id, { dockerfilePath: "docker/Dockerfile" }), { messageId: id });
  await backend.confirmed();
  const job = await waitFor(() => node.rt.store.getJob(id), { message: "the message was stored" });
  expect(job.state).toBe("rejected");
  expect(job.error?.fields?.map((f) => f.field)).toEqual(["dockerfilePath"]);
});

test("AMQP_UNKNOWN_FIELDS=drop lets a backend's extra fields through on execute.queue, logged by name", async () => {
  const id = `amqp-drop-${run}`;
  lenientBackend.publishJob(backendMessage(id, { backendVersion: "2.1", tenantHint: "t-9" }), { messageId: id });
  await lenientBackend.confirmed();
  const job = await waitFor(() => lenient.rt.store.getJob(id), { message: "the message was stored" });
  expect(job.state).not.toBe("rejected");
  expect(job.params).not.toHaveProperty("backendVersion");
  expect(logger.lines.join("\n")).toMatch(/⚠️ .*backendVersion, tenantHint/);
  expect(logger.lines.join("\n")).not.toContain("t-9");
  // REST is never lenient.
  expect((await lenient.http("POST", "/api/jobs", build({ backendVersion: "2.1" }))).status).toBe(422);
});
