import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { createTracing, NO_TRACING, tracingConfigOf } from "../../lib/tracing";
import type { ChildProcess } from "node:child_process";
import { killHard, prepareEntryPoint, startEntryPoint, type EntryPointSetup } from "../support/entry-point";
import { authHeader, ROOT, startNode, TestNode } from "../support/orchestrator";
import { BackendClient } from "../support/amqp";
import { createVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * Job traces against a local OTLP/HTTP receiver (JSON, as the exporter sends it): a job
 * submitted to a real node is one trace — intake, validation, claim, launch, the attempt's
 * run, the published final state — with the callbacks of its worker (the SDK's worker
 * client, sending the TRACEPARENT it was launched with) in the same trace; and a job
 * stored by one node and run by another (a failover) stays one trace. The traced nodes are
 * the real entry point in their own processes (the exporter loads Node's http module with a
 * dynamic import, which Jest's module sandbox cannot run).
 */
const CONTRACT = path.join(ROOT, "test/support/plugins/contract-plugin.ts");

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: Record<string, unknown>;
  service: string;
}

const spans: ReceivedSpan[] = [];
let receiver: http.Server;
let endpoint: string;

/** OTLP/JSON ids are hex; the protobuf JSON mapping would give base64. */
const hexId = (v: unknown): string => (typeof v !== "string" || v === "" ? "" : /^[0-9a-f]+$/i.test(v) && (v.length === 32 || v.length === 16) ? v.toLowerCase() : Buffer.from(v, "base64").toString("hex"));

function attributesOf(list: Array<{ key: string; value: Record<string, unknown> }> = []): Record<string, unknown> {
  return Object.fromEntries(list.map((a) => [a.key, Object.values(a.value)[0]]));
}

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces" || !String(req.headers["content-type"]).startsWith("application/json")) {
        res.statusCode = 415;
        return res.end();
      }
      const request = JSON.parse(body) as { resourceSpans: Array<{ resource: { attributes: any[] }; scopeSpans: Array<{ spans: any[] }> }> };
      for (const rs of request.resourceSpans) {
        const service = String(attributesOf(rs.resource.attributes)["service.name"]);
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ traceId: hexId(s.traceId), spanId: hexId(s.spanId), parentSpanId: hexId(s.parentSpanId), name: s.name, attributes: attributesOf(s.attributes), service });
      }
      res.setHeader("content-type", "application/json");
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const c of processes) await killHard(c);
  await new Promise((resolve) => receiver.close(resolve));
});

const processes: ChildProcess[] = [];

async function tracedSetup(): Promise<EntryPointSetup> {
  return prepareEntryPoint({
    configure: (c) => c.plugins.push({ use: CONTRACT }),
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: "bt-h14b-test", OTEL_BSP_SCHEDULE_DELAY: "50" },
  });
}

async function run(setup: EntryPointSetup, env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = startEntryPoint({ ...setup.env, ...env });
  processes.push(child);
  await setup.healthy();
  return child;
}

/** SIGTERM: the node stops as in production, exporting its last spans. */
async function stopGracefully(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

async function finished(setup: { get(route: string): Promise<any> }, id: string) {
  return waitFor(
    async () => {
      const r = await setup.get(`/api/jobs/${id}`);
      return ["succeeded", "failed"].includes(r?.job?.state) ? r : null;
    },
    { timeout: 30_000, message: `job ${id} never finished` },
  );
}

/** The spans of one job, once every name expected has arrived (the node flushes its exporter while waiting). */
async function spansOf(jobId: string, names: string[]): Promise<ReceivedSpan[]> {
  return waitFor(
    async () => {
      const intake = spans.find((s) => s.name === "blacktree.intake" && s.attributes["blacktree.job.id"] === jobId);
      if (!intake) return null;
      const mine = spans.filter((s) => s.traceId === intake.traceId);
      return names.every((name) => mine.some((s) => s.name === name)) ? mine : null;
    },
    { timeout: 15_000, message: `the spans ${names.join(", ")} of job ${jobId} never all arrived (got ${spans.map((s) => s.name).join(", ")})` },
  );
}

const one = (list: ReceivedSpan[], name: string) => {
  const found = list.filter((s) => s.name === name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0];
};

test("without an OTLP endpoint tracing is off: the no-op, and no trace context is stored", async () => {
  expect(createTracing(tracingConfigOf({}))).toBe(NO_TRACING);
  const n: TestNode = await startNode({ configure: (c) => c.plugins.push({ use: CONTRACT }) });
  try {
    expect(n.rt.tracing).toBe(NO_TRACING);
    const res = await n.http("POST", "/api/jobs", { type: "contract", deploymentId: "untraced", mode: "fail", exitCode: 1 });
    expect(res.status).toBe(202);
    expect(res.body.job.traceContext).toBeNull();
    await finished({ get: async (route) => (await n.http("GET", route)).body }, res.body.job.id);
  } finally {
    await n.stop();
  }
});

test("a job is one trace: intake, validation, claim, launch, run, publish, and its worker's callbacks", async () => {
  const setup = await tracedSetup();
  await run(setup);
  // The submitter's own trace: the job's trace joins it.
  const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const clientSpan = "00f067aa0ba902b7";
  const res = await fetch(`${setup.url}/api/jobs`, {
    method: "POST",
    headers: { ...authHeader(), "content-type": "application/json", traceparent: `00-${clientTrace}-${clientSpan}-01` },
    body: JSON.stringify({ type: "contract", deploymentId: "traced", mode: "report", apiToken: "tok-traced-0123456789" }),
  });
  expect(res.status).toBe(202);
  const submitted = (await res.json()) as any;
  const jobId = submitted.job.id;
  expect(submitted.job.traceContext).toMatch(new RegExp(`^00-${clientTrace}-[0-9a-f]{16}-01$`));
  expect((await finished(setup, jobId)).job.state).toBe("succeeded");

  const names = ["blacktree.intake", "blacktree.validate", "blacktree.claim", "blacktree.launch", "blacktree.run", "blacktree.publish", "blacktree.worker.started", "blacktree.worker.log", "blacktree.worker.secrets", "blacktree.worker.result"];
  const mine = await spansOf(jobId, names);
  expect(new Set(mine.map((s) => s.traceId))).toEqual(new Set([clientTrace]));
  expect(new Set(mine.map((s) => s.service))).toEqual(new Set(["bt-h14b-test"]));

  const intake = one(mine, "blacktree.intake");
  expect(intake.parentSpanId).toBe(clientSpan);
  expect(intake.attributes).toMatchObject({ "blacktree.source": "rest", "blacktree.job.id": jobId, "blacktree.job.created": true });
  expect(submitted.job.traceContext).toBe(`00-${clientTrace}-${intake.spanId}-01`);
  for (const name of ["blacktree.validate", "blacktree.claim", "blacktree.launch", "blacktree.run", "blacktree.publish"]) expect([name, one(mine, name).parentSpanId]).toEqual([name, intake.spanId]);
  const launch = one(mine, "blacktree.launch");
  expect(launch.attributes).toMatchObject({ "blacktree.job.id": jobId, "blacktree.attempt": 1, "blacktree.target": "process" });
  expect(one(mine, "blacktree.run").attributes).toMatchObject({ "blacktree.attempt": 1, "blacktree.job.state": "succeeded", "blacktree.target": "process" });
  expect(one(mine, "blacktree.publish").attributes).toMatchObject({ "blacktree.job.state": "succeeded", "blacktree.sink": "moleculer" });
  // The worker's callbacks: children of the launch whose context its env carried.
  const callbacks = mine.filter((s) => s.name.startsWith("blacktree.worker."));
  expect(callbacks.length).toBeGreaterThanOrEqual(4);
  for (const c of callbacks) expect([c.name, c.parentSpanId, c.attributes["blacktree.job.id"]]).toEqual([c.name, launch.spanId, jobId]);
});

test("a job stored by one node and run by another after it went away stays one trace", async () => {
  const setup = await tracedSetup();
  // The first node takes the job in but runs no jobs (no dispatcher), then stops.
  const first = await run(setup, { SERVICES: "validator,intake,gateway,status" });
  const jobId = await setup.submit({ type: "contract", deploymentId: "failover", mode: "report" });
  expect((await setup.get(`/api/jobs/${jobId}`)).job.state).toBe("queued");
  await stopGracefully(first);

  // Another node on the same store claims and runs it.
  await run(setup);
  expect((await finished(setup, jobId)).job.state).toBe("succeeded");
  const mine = await spansOf(jobId, ["blacktree.intake", "blacktree.claim", "blacktree.launch", "blacktree.run", "blacktree.publish", "blacktree.worker.result"]);
  const intake = one(mine, "blacktree.intake");
  expect(intake.parentSpanId).toBe("");
  for (const name of ["blacktree.claim", "blacktree.launch", "blacktree.run", "blacktree.publish"]) expect([name, one(mine, name).parentSpanId]).toEqual([name, intake.spanId]);
  const launch = one(mine, "blacktree.launch");
  for (const c of mine.filter((s) => s.name.startsWith("blacktree.worker."))) expect([c.name, c.parentSpanId]).toEqual([c.name, launch.spanId]);
});

test("a job from execute.queue is traced from the message (a child of its traceparent header) to its api.result", async () => {
  const vhost = createVhost("h14b-trace");
  const backend = await BackendClient.connect("bt-h14b-trace-backend", vhost.url);
  let child: ChildProcess | null = null;
  try {
    const setup = await prepareEntryPoint({
      configure: (c) => c.plugins.push({ use: CONTRACT }),
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: "bt-h14b-test", OTEL_BSP_SCHEDULE_DELAY: "50", AMQP_URL: vhost.url },
    });
    child = await run(setup);
    const jobId = `bt-h14b-amqp-${process.pid}`;
    const senderTrace = "5bf92f3577b34da6a3ce929d0e0e4737";
    const senderSpan = "10f067aa0ba902b8";
    backend.publishJob({ type: "contract", deploymentId: "amqp-traced", mode: "report" }, { messageId: jobId, headers: { traceparent: `00-${senderTrace}-${senderSpan}-01` } });
    await backend.confirmed();
    expect((await finished(setup, jobId)).job.state).toBe("succeeded");
    const mine = await spansOf(jobId, ["blacktree.intake", "blacktree.validate", "blacktree.claim", "blacktree.launch", "blacktree.run", "blacktree.worker.result"]);
    const withResult = await waitFor(() => (spans.filter((s) => s.traceId === senderTrace && s.name === "blacktree.publish").length === 2 ? spans.filter((s) => s.traceId === senderTrace) : null), {
      timeout: 15_000,
      message: "the Moleculer and api.result publish spans never both arrived",
    });
    const intake = one(mine, "blacktree.intake");
    expect(intake).toMatchObject({ traceId: senderTrace, parentSpanId: senderSpan });
    expect(intake.attributes).toMatchObject({ "blacktree.source": "amqp", "blacktree.job.id": jobId });
    expect(one(mine, "blacktree.validate").parentSpanId).toBe(intake.spanId);
    const publishes = withResult.filter((s) => s.name === "blacktree.publish");
    expect(publishes.map((p) => p.attributes["blacktree.sink"]).sort()).toEqual(["amqp api.result", "moleculer"]);
    for (const p of publishes) expect(p.parentSpanId).toBe(intake.spanId);
  } finally {
    if (child) await killHard(child);
    await backend.close();
    vhost.remove();
  }
});
