import type { ConsumeMessage } from "amqplib";
import { FAILURES_HEADER, handleExecuteMessage, ExecuteConsumerDeps, ORIGINAL_ID_HEADER } from "../../lib/amqp/execute-consumer";
import { redactBody, redactUrl, replayBody } from "../../lib/amqp/redact";
import { blacktreeError } from "../../lib/errors";
import type { JobStore } from "../../lib/store/job-store";

/** The execute.queue decisions without a broker: what is acked, nacked, stored, dead-lettered. */
function message(body: string, messageId?: string, headers: Record<string, unknown> = {}): ConsumeMessage {
  return {
    content: Buffer.from(body),
    fields: { deliveryTag: 1, redelivered: false, exchange: "blacktree.direct", routingKey: "worker.execute", consumerTag: "t" },
    properties: { messageId, headers, contentType: "application/json" },
  } as unknown as ConsumeMessage;
}

function deps(overrides: Partial<ExecuteConsumerDeps> = {}) {
  const calls = { published: [] as Array<{ exchange: string; queue: string; body: string; headers: any; options: any; at: number }>, deadLetters: [] as any[], jobs: [] as any[] };
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
    publish: async (exchange, queue, content, options) => {
      calls.published.push({ exchange, queue, body: content.toString(), headers: (options as any).headers, options, at: Date.now() });
    },
    notify: () => undefined,
    logger: { info() {}, warn() {}, error() {}, debug() {} },
    maxBytes: 1024,
    requeueDelayMs: 50,
    maxHandlingFailures: 3,
    ...overrides,
  };
  return { d, calls };
}

function delivery() {
  const log: string[] = [];
  const at: number[] = [];
  return { log, at, ack: () => (log.push("ack"), at.push(Date.now())), nack: (requeue: boolean) => (log.push(`nack:${requeue}`), at.push(Date.now())) };
}

describe("execute.queue consumer", () => {
  test("a stored job is acked", async () => {
    const { d } = deps();
    const del = delivery();
    await handleExecuteMessage(message('{"deploymentId":"a","repository":"o/r"}'), del, d);
    expect(del.log).toEqual(["ack"]);
  });

  /**
   * Bounded retries (a header counts failed handlings). On the code before this change the
   * first four tests failed: every failure was a plain nack with requeue (no copy, no
   * count), so a failing message came back forever and was never dead-lettered. (The
   * "first four" below failed so; the nack cases after them passed before and still do.)
   */
  test("a store failure: after the delay a copy with the failure count goes to execute.queue (confirmed), then the original is acked", async () => {
    const { d, calls } = deps({ submit: async () => Promise.reject(blacktreeError("STORE_UNAVAILABLE", "disk full")), requeueDelayMs: 150 });
    const del = delivery();
    const started = Date.now();
    await handleExecuteMessage(message('{"deploymentId":"a"}', "m-1", { "x-trace": "t" }), del, d);
    expect(calls.published).toHaveLength(1);
    const [copy] = calls.published;
    expect(copy.at - started).toBeGreaterThanOrEqual(140);
    expect(copy).toMatchObject({ exchange: "", queue: "execute.queue", body: '{"deploymentId":"a"}' });
    expect(copy.options).toMatchObject({ persistent: true, mandatory: true, messageId: "m-1", contentType: "application/json", headers: { "x-trace": "t", [FAILURES_HEADER]: 1, [ORIGINAL_ID_HEADER]: "m-1" } });
    expect(del.log).toEqual(["ack"]);
    expect(del.at[0]).toBeGreaterThanOrEqual(copy.at);
  });

  test("a copy that fails again carries the next count; the failure that reaches the limit dead-letters HANDLING_FAILED with the last error, token blanked", async () => {
    const boom = new TypeError("Cannot read properties of undefined (token ghp_secret123)");
    const { d, calls } = deps({ submit: async () => Promise.reject(boom), requeueDelayMs: 0, maxHandlingFailures: 3 });
    const body = JSON.stringify({ deploymentId: "a", token: "ghp_secret123" });
    const second = delivery();
    await handleExecuteMessage(message(body, "m-2", { [FAILURES_HEADER]: 1, [ORIGINAL_ID_HEADER]: "m-2" }), second, d);
    expect(calls.published.map((p) => p.headers[FAILURES_HEADER])).toEqual([2]);
    expect(second.log).toEqual(["ack"]);

    const third = delivery();
    await handleExecuteMessage(message(body, "m-2", { [FAILURES_HEADER]: 2, [ORIGINAL_ID_HEADER]: "m-2" }), third, d);
    expect(third.log).toEqual(["ack"]);
    expect(calls.deadLetters).toHaveLength(1);
    expect(calls.deadLetters[0]).toMatchObject({ reason: "HANDLING_FAILED", detail: "handling failed 3 times; last error TypeError: Cannot read properties of undefined (token [redacted])", properties: { messageId: "m-2", handlingFailures: 3 } });
    const dlq = calls.published[1];
    expect(dlq).toMatchObject({ exchange: "", queue: "execute.dlq", headers: { "x-blacktree-reason": "HANDLING_FAILED", "x-original-message-id": "m-2" } });
    // The retry copy is the message itself (its job needs the token); nothing else keeps it.
    expect(JSON.stringify([calls.deadLetters, dlq])).not.toContain("ghp_secret123");
    // The original and its copies map to one dead letter id (a crash between copy and ack is harmless).
    const again = deps({ submit: async () => Promise.reject(boom), requeueDelayMs: 0, maxHandlingFailures: 1 });
    await handleExecuteMessage(message(body, "m-2"), delivery(), again.d);
    expect(again.calls.deadLetters[0].id).toBe(calls.deadLetters[0].id);
  });

  test("a copy keeps the job key of its original: a message without messageId stays without one", async () => {
    const keys: Array<string | null> = [];
    const { d, calls } = deps({
      submit: async (_b, key) => {
        keys.push(key);
        throw blacktreeError("DEPENDENCY_UNAVAILABLE", "DNS: try again");
      },
      requeueDelayMs: 0,
    });
    await handleExecuteMessage(message('{"deploymentId":"a"}'), delivery(), d);
    expect(calls.published[0].options.messageId).toBeUndefined();
    expect(calls.published[0].headers[ORIGINAL_ID_HEADER]).toBeUndefined();
    // The link gives a copy a random messageId; the header says the original had none.
    await handleExecuteMessage(message('{"deploymentId":"a"}', "3f2a9c1e-link-assigned", { [FAILURES_HEADER]: 1 }), delivery(), d);
    await handleExecuteMessage(message('{"deploymentId":"a"}', "m-3", { [FAILURES_HEADER]: 1, [ORIGINAL_ID_HEADER]: "m-3" }), delivery(), d);
    expect(keys).toEqual([null, null, "m-3"]);
  });

  test("a hostile failure count counts as none", async () => {
    const { d, calls } = deps({ submit: async () => Promise.reject(new Error("x")), requeueDelayMs: 0 });
    await handleExecuteMessage(message('{"deploymentId":"a"}', undefined, { [FAILURES_HEADER]: "-7" }), delivery(), d);
    expect(calls.published[0].headers[FAILURES_HEADER]).toBe(1);
  });

  test("when the copy cannot be published the original is nacked with requeue, after the delay", async () => {
    const { d } = deps({ submit: async () => Promise.reject(new Error("x")), publish: async () => Promise.reject(blacktreeError("AMQP_UNAVAILABLE", "down")), requeueDelayMs: 100 });
    const del = delivery();
    const started = Date.now();
    await handleExecuteMessage(message('{"deploymentId":"a"}'), del, d);
    expect(del.log).toEqual(["nack:true"]);
    expect(del.at[0] - started).toBeGreaterThanOrEqual(95);
  });

  test("at the limit, a dead letter that cannot be stored: nack with requeue after the delay (the count stays)", async () => {
    const { d } = deps({ submit: async () => Promise.reject(new Error("x")), requeueDelayMs: 100, maxHandlingFailures: 1 });
    (d.store as any).addDeadLetter = async () => Promise.reject(blacktreeError("STORE_UNAVAILABLE", "disk gone"));
    const del = delivery();
    const started = Date.now();
    await handleExecuteMessage(message('{"deploymentId":"a"}'), del, d);
    expect(del.log).toEqual(["nack:true"]);
    expect(del.at[0] - started).toBeGreaterThanOrEqual(95);
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
