import type { ConsumeMessage } from "amqplib";
import { handleExecuteMessage, ExecuteConsumerDeps } from "../../lib/amqp/execute-consumer";
import { redactBody, redactUrl, replayBody } from "../../lib/amqp/redact";
import { blacktreeError } from "../../lib/errors";
import type { JobStore } from "../../lib/store/job-store";

/** The execute.queue decisions without a broker: what is acked, nacked, stored, dead-lettered. */
function message(body: string, messageId?: string): ConsumeMessage {
  return {
    content: Buffer.from(body),
    fields: { deliveryTag: 1, redelivered: false, exchange: "blacktree.direct", routingKey: "worker.execute", consumerTag: "t" },
    properties: { messageId, headers: {} },
  } as unknown as ConsumeMessage;
}

function deps(overrides: Partial<ExecuteConsumerDeps> = {}) {
  const calls = { published: [] as Array<{ queue: string; body: string; headers: unknown }>, deadLetters: [] as unknown[], jobs: [] as any[] };
  const store = {
    addDeadLetter: async (l: unknown) => {
      calls.deadLetters.push(l);
      return { letter: l, created: true };
    },
    createJob: async (j: any) => {
      calls.jobs.push(j);
      return { job: j, created: true };
    },
  } as unknown as JobStore;
  const d: ExecuteConsumerDeps = {
    store,
    submit: async () => ({ job: { id: "job_1" }, created: true }),
    publish: async (_e, queue, content, options) => {
      calls.published.push({ queue, body: content.toString(), headers: (options as any).headers });
    },
    logger: { info() {}, warn() {}, error() {}, debug() {} },
    maxBytes: 1024,
    requeueDelayMs: 50,
    ...overrides,
  };
  return { d, calls };
}

function delivery() {
  const log: string[] = [];
  return { log, ack: () => log.push("ack"), nack: (requeue: boolean) => log.push(`nack:${requeue}`) };
}

describe("execute.queue consumer", () => {
  test("a stored job is acked", async () => {
    const { d } = deps();
    const del = delivery();
    await handleExecuteMessage(message('{"deploymentId":"a","repository":"o/r"}'), del, d);
    expect(del.log).toEqual(["ack"]);
  });

  test("a store failure is nacked with requeue only after the delay (no hot redelivery loop)", async () => {
    const { d } = deps({ submit: async () => Promise.reject(blacktreeError("STORE_UNAVAILABLE", "disk full")), requeueDelayMs: 150 });
    const del = delivery();
    const started = Date.now();
    await handleExecuteMessage(message('{"deploymentId":"a"}'), del, d);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(del.log).toEqual(["nack:true"]);
  });

  test("a dead letter that cannot be published is not acked", async () => {
    const { d } = deps({ publish: async () => Promise.reject(blacktreeError("PUBLISH_FAILED", "nacked")), requeueDelayMs: 0 });
    const del = delivery();
    await handleExecuteMessage(message("not json"), del, d);
    expect(del.log).toEqual(["nack:true"]);
  });

  test("poison, non-object and oversized messages go to execute.dlq with their reason, token redacted", async () => {
    const { d, calls } = deps();
    for (const body of ['{"token":"ghp_x", broken', "42", JSON.stringify({ deploymentId: "a", token: "ghp_x", pad: "x".repeat(2000) })]) {
      const del = delivery();
      await handleExecuteMessage(message(body), del, d);
      expect(del.log).toEqual(["ack"]);
    }
    expect(calls.published.map((p) => [p.queue, (p.headers as any)["x-blacktree-reason"]])).toEqual([
      ["execute.dlq", "NOT_JSON"],
      ["execute.dlq", "NOT_AN_OBJECT"],
      ["execute.dlq", "TOO_LARGE"],
    ]);
    expect(JSON.stringify(calls)).not.toContain("ghp_x");
  });

  test("an invalid job with a deploymentId becomes a rejected job without its token; without one, a dead letter", async () => {
    const invalid = blacktreeError("VALIDATION_FAILED", "Invalid job: repository: required", { fields: [{ field: "repository", message: "required" }] });
    const { d, calls } = deps({ submit: async () => Promise.reject(invalid) });
    await handleExecuteMessage(message(JSON.stringify({ deploymentId: "dep-1", token: "ghp_x", createdAt: "2025-01-01T00:00:00Z" })), delivery(), d);
    await handleExecuteMessage(message(JSON.stringify({ token: "ghp_x" })), delivery(), d);
    expect(calls.jobs).toHaveLength(1);
    expect(calls.jobs[0]).toMatchObject({ state: "rejected", type: "build", deploymentId: "dep-1", params: { deploymentId: "dep-1" }, error: { type: "VALIDATION_FAILED", fields: [{ field: "repository", message: "required" }] } });
    expect(calls.jobs[0].params.token).toBeUndefined();
    expect(calls.published.map((p) => (p.headers as any)["x-blacktree-reason"])).toEqual(["NO_DEPLOYMENT_ID"]);
    expect(JSON.stringify(calls)).not.toContain("ghp_x");
  });
});

describe("redaction", () => {
  test("URLs lose their password, bodies their token", () => {
    expect(redactUrl("amqp://guest:secret@rabbit:5672/vh")).toBe("amqp://guest:***@rabbit:5672/vh");
    expect(redactUrl("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
    expect(JSON.parse(redactBody('{"a":1,"token":"ghp_x"}'))).toEqual({ a: 1, token: "[redacted]" });
    expect(redactBody('{"token": "ghp_x", oops')).toBe('{"token": "[redacted]", oops');
    expect(redactBody("[1]")).toBe("[1]");
    expect(JSON.parse(replayBody(redactBody('{"a":1,"token":"ghp_x"}')))).toEqual({ a: 1 });
    expect(replayBody("not json")).toBe("not json");
  });
});
