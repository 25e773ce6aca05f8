import type { ConsumeMessage } from "amqplib";
import { ExecuteIntake, FAILURES_HEADER, handleExecuteMessage, ExecuteConsumerDeps, ORIGINAL_ID_HEADER } from "../../lib/amqp/execute-consumer";
import { redactJsonText, redactUrl, replayBody, secretKeyTest } from "../../lib/amqp/redact";
import { blacktreeError } from "../../lib/errors";
import type { Job, NewJob } from "../../lib/jobs/model";
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS } from "../../lib/jobs/policy";
import type { JobStore } from "../../lib/store/job-store";
import { waitFor } from "../support/wait";

/** The execute.queue decisions without a broker: what is acked, nacked, stored, dead-lettered. */
function message(body: string, messageId?: string, headers: Record<string, unknown> = {}): ConsumeMessage {
  return {
    content: Buffer.from(body),
    fields: { deliveryTag: 1, redelivered: false, exchange: "blacktree.direct", routingKey: "worker.execute", consumerTag: "t" },
    properties: { messageId, headers, contentType: "application/json" },
  } as unknown as ConsumeMessage;
}

/** A job as validation would return it: the id from `jobId` (or the transport key), else from deploymentId. */
function validJob(body: Record<string, unknown>, key: string | null): NewJob {
  const deploymentId = typeof body.deploymentId === "string" ? body.deploymentId : null;
  return {
    id: String(body.jobId ?? key ?? `job_${deploymentId}`),
    type: "build",
    state: "queued",
    deploymentId,
    priority: 0,
    target: null,
    concurrencyKey: null,
    params: { deploymentId },
    secrets: {},
    timeouts: DEFAULT_TIMEOUTS,
    retry: DEFAULT_RETRY,
    source: "amqp",
    parentId: null,
    error: null,
    deadline: null,
    runAfter: null,
  };
}

const asJob = (j: NewJob, now: number): Job => ({ ...j, attempt: 0, createdAt: now, updatedAt: now, result: null, version: 1, submittedBy: null }) as unknown as Job;

function deps(overrides: Partial<ExecuteConsumerDeps> = {}) {
  const calls = {
    published: [] as Array<{ exchange: string; queue: string; body: string; headers: any; options: any; at: number }>,
    deadLetters: [] as any[],
    jobs: [] as any[],
    /** Store writes, in the order they were issued. */
    writes: [] as NewJob[],
  };
  const stored = new Map<string, Job>();
  const store = {
    addDeadLetter: async (l: unknown) => {
      calls.deadLetters.push(l);
      return { letter: l, created: true };
    },
    createJob: async (j: NewJob) => {
      calls.writes.push(j);
      const existing = stored.get(j.id);
      if (existing) return { job: existing, created: false };
      calls.jobs.push(j);
      const job = asJob(j, Date.now());
      stored.set(j.id, job);
      return { job, created: true };
    },
  } as unknown as JobStore;
  const d: ExecuteConsumerDeps = {
    store,
    toNewJob: async (body, key) => validJob(body, key),
    publish: async (exchange, queue, content, options) => {
      calls.published.push({ exchange, queue, body: content.toString(), headers: (options as any).headers, options, at: Date.now() });
    },
    logger: { info() {}, warn() {}, error() {}, debug() {} },
    maxBytes: 1024,
    requeueDelayMs: 50,
    maxHandlingFailures: 3,
    ...overrides,
  };
  return { d, calls, stored };
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
    const { d, calls } = deps({ requeueDelayMs: 150 });
    (d.store as any).createJob = async () => Promise.reject(blacktreeError("STORE_UNAVAILABLE", "disk full"));
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
    const { d, calls } = deps({ toNewJob: async () => Promise.reject(boom), requeueDelayMs: 0, maxHandlingFailures: 3 });
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
    const again = deps({ toNewJob: async () => Promise.reject(boom), requeueDelayMs: 0, maxHandlingFailures: 1 });
    await handleExecuteMessage(message(body, "m-2"), delivery(), again.d);
    expect(again.calls.deadLetters[0].id).toBe(calls.deadLetters[0].id);
  });

  test("a copy keeps the job key of its original: a message without messageId stays without one", async () => {
    const keys: Array<string | null> = [];
    const { d, calls } = deps({
      toNewJob: async (_b, key) => {
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
    const { d, calls } = deps({ toNewJob: async () => Promise.reject(new Error("x")), requeueDelayMs: 0 });
    await handleExecuteMessage(message('{"deploymentId":"a"}', undefined, { [FAILURES_HEADER]: "-7" }), delivery(), d);
    expect(calls.published[0].headers[FAILURES_HEADER]).toBe(1);
  });

  test("when the copy cannot be published the original is nacked with requeue, after the delay", async () => {
    const { d } = deps({ toNewJob: async () => Promise.reject(new Error("x")), publish: async () => Promise.reject(blacktreeError("AMQP_UNAVAILABLE", "down")), requeueDelayMs: 100 });
    const del = delivery();
    const started = Date.now();
    await handleExecuteMessage(message('{"deploymentId":"a"}'), del, d);
    expect(del.log).toEqual(["nack:true"]);
    expect(del.at[0] - started).toBeGreaterThanOrEqual(95);
  });

  test("at the limit, a dead letter that cannot be stored: nack with requeue after the delay (the count stays)", async () => {
    const { d } = deps({ toNewJob: async () => Promise.reject(new Error("x")), requeueDelayMs: 100, maxHandlingFailures: 1 });
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
    const { d, calls } = deps({ toNewJob: async () => Promise.reject(invalid) });
    await handleExecuteMessage(message(JSON.stringify({ deploymentId: "dep-1", token: "ghp_x", createdAt: "2025-01-01T00:00:00Z" })), delivery(), d);
    await handleExecuteMessage(message(JSON.stringify({ token: "ghp_x" })), delivery(), d);
    expect(calls.jobs).toHaveLength(1);
    expect(calls.jobs[0]).toMatchObject({ state: "rejected", type: "build", deploymentId: "dep-1", params: { deploymentId: "dep-1" }, error: { type: "VALIDATION_FAILED", fields: [{ field: "repository", message: "required" }] } });
    expect(calls.jobs[0].params.token).toBeUndefined();
    expect(calls.published.map((p) => (p.headers as any)["x-blacktree-reason"])).toEqual(["NO_DEPLOYMENT_ID"]);
    expect(JSON.stringify(calls)).not.toContain("ghp_x");
  });
});

/**
 * Batches. On the code before this change every test here failed: there was no
 * ExecuteIntake, each message made its own `createJob` transaction and was acked after it.
 */
describe("execute.queue ordering", () => {
  const body = (deploymentId: string, extra: Record<string, unknown> = {}) => JSON.stringify({ deploymentId, ...extra });
  function deferred<T>() {
    let resolve!: (v: T) => void;
    const promise = new Promise<T>((r) => (resolve = r));
    return { promise, resolve };
  }

  test("messages are validated concurrently but stored in the order they arrived", async () => {
    const slow = deferred<void>();
    const validated: string[] = [];
    const { d, calls } = deps({
      toNewJob: async (b, key) => {
        if (b.deploymentId === "slow") await slow.promise;
        validated.push(String(b.deploymentId));
        return validJob(b, key);
      },
    });
    const intake = new ExecuteIntake(d);
    const first = intake.handle(message(body("slow")), delivery());
    const second = intake.handle(message(body("fast")), delivery());
    await waitFor(() => validated.includes("fast"), { message: "the second message validated" });
    await new Promise((r) => setImmediate(r));
    expect(calls.writes).toHaveLength(0); // it waits for the first message's write
    slow.resolve();
    await Promise.all([first, second]);
    expect(calls.writes.map((j) => j.deploymentId)).toEqual(["slow", "fast"]);
  });

  test("a message whose validation throws is retried on its own: the others are stored and acked without waiting", async () => {
    const { d, calls } = deps({
      toNewJob: async (b, key) => {
        if (b.deploymentId === "boom") throw new TypeError("x is undefined");
        return validJob(b, key);
      },
      requeueDelayMs: 300,
    });
    const intake = new ExecuteIntake(d);
    const [ok1, boom, ok2] = [delivery(), delivery(), delivery()];
    const started = Date.now();
    const all = Promise.all([intake.handle(message(body("a")), ok1), intake.handle(message(body("boom"), "m-boom"), boom), intake.handle(message(body("b")), ok2)]);
    await waitFor(() => ok1.log.length && ok2.log.length, { message: "the good messages acked" });
    expect(Date.now() - started).toBeLessThan(250);
    expect(boom.log).toEqual([]);
    expect(calls.writes.map((j) => j.deploymentId)).toEqual(["a", "b"]);
    await all;
    expect(boom.log).toEqual(["ack"]);
    expect(calls.published).toMatchObject([{ queue: "execute.queue", headers: { [FAILURES_HEADER]: 1 } }]);
  });

  test("a redelivered job is acked and stored once", async () => {
    const { d, calls } = deps();
    const intake = new ExecuteIntake(d);
    await intake.handle(message(body("a", { jobId: "j-a" })), delivery());
    const again = delivery();
    await intake.handle(message(body("a", { jobId: "j-a" })), again);
    expect(again.log).toEqual(["ack"]);
    expect(calls.jobs.map((j) => j.id)).toEqual(["j-a"]);
  });
});

describe("redaction", () => {
  test("URLs lose their password, bodies every secret at any depth; what does not parse is not kept", () => {
    const isSecret = secretKeyTest(["registryPassword"]);
    expect(redactUrl("amqp://guest:secret@rabbit:5672/vh")).toBe("amqp://guest:***@rabbit:5672/vh");
    expect(redactUrl("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
    expect(JSON.parse(redactJsonText('{"a":1,"token":"ghp_x"}', isSecret)!)).toEqual({ a: 1, token: "[redacted]" });
    expect(JSON.parse(redactJsonText('[{"b":{"Token":"x","registrypassword":"y","list":[{"apiKey":"z"}]}}]', isSecret)!)).toEqual([{ b: { Token: "[redacted]", registrypassword: "[redacted]", list: [{ apiKey: "[redacted]" }] } }]);
    expect(redactJsonText('{"token": "ghp_x", oops', isSecret)).toBeNull();
    expect(redactJsonText(`${"[".repeat(40)}${"]".repeat(40)}`, isSecret)).toBeNull();
    expect(redactJsonText("[1]", isSecret)).toBe("[1]");
    expect(JSON.parse(replayBody(redactJsonText('{"a":1,"token":"ghp_x","n":{"password":"p"}}', isSecret)!))).toEqual({ a: 1, n: {} });
    expect(replayBody("not json")).toBe("not json");
  });
});
