import path from "node:path";
import { startNode, TestNode } from "../support/orchestrator";
import { isGone } from "../support/process";
import { waitFor } from "../support/wait";

/** The clock against real child processes: every timeout kind, retries, cancel races, stop, coalescing, orphans, limits. */
const PLUGIN = path.join(__dirname, "../support/plugins/script-plugin.ts");
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];

let node: TestNode;

async function submit(n: TestNode, body: Record<string, unknown>) {
  const res = await n.http("POST", "/api/jobs", body);
  if (res.status !== 202) throw new Error(`submit refused: ${res.text}`);
  return res.body.job.id as string;
}

async function waitState(n: TestNode, id: string, states = FINAL, timeout = 20_000) {
  return waitFor(
    async () => {
      const r = await n.http("GET", `/api/jobs/${id}`);
      return states.includes(r.body?.job?.state) ? r.body : null;
    },
    { timeout, message: `job ${id} never reached ${states.join("|")}` },
  );
}

const script = (source: string, extra: Record<string, unknown> = {}) => ({ type: "script", script: source, ...extra });
/** A worker that runs until it is stopped. */
const LONG = "setInterval(() => {}, 1000)";

beforeAll(async () => {
  node = await startNode({
    env: { REAP_INTERVAL_MS: "300" },
    configure: (c) => {
      c.plugins.push({ use: PLUGIN });
      c.limits = { byType: { "script-b": 1 } };
      c.taskTypes["script-b"] = { coalesce: true };
    },
  });
});
afterAll(() => node?.stop());

describe("timeouts", () => {
  test("a worker that never starts hits startTimeout and is stopped", async () => {
    const id = await submit(node, script(LONG, { target: "stuck", timeouts: { startTimeout: 400 } }));
    const done = await waitState(node, id);
    expect(done.job.state).toBe("timed_out");
    expect(done.history.find((e: any) => e.to === "timed_out").data.timeout).toBe("startTimeout");
  });

  test("a heartbeating worker that goes silent is lost after heartbeatTimeout and retried", async () => {
    const source = `(async () => { await report("started"); for (let i = 0; i < 3; i++) { await report("heartbeat"); await sleep(100); } await sleep(60000); })()`;
    const retry = { maxAttempts: 2, initialDelay: 100, jitter: "none", retryOn: ["WORKER_LOST"] };
    const id = await submit(node, script(source, { timeouts: { heartbeatTimeout: 700 }, retry }));
    const done = await waitState(node, id);
    expect(done.job.state).toBe("failed");
    expect(done.attempts).toHaveLength(2);
    for (const a of done.attempts) {
      expect(a.outcome).toBe("WORKER_LOST");
      expect(a.reason).toMatch(/heartbeatTimeout/);
      expect(a.startedAt).not.toBeNull(); // it did report started
    }
    await waitFor(() => done.attempts.every((a: any) => isGone(a.handle.pid)), { message: "silent workers still running" });
  });

  test("a job waiting past queueTimeout times out in the queue", async () => {
    const blocker = await submit(node, { type: "script-b", deploymentId: "q-block", script: LONG });
    await waitState(node, blocker, ["running"]);
    const id = await submit(node, { type: "script-b", deploymentId: "q-wait", script: "0", timeouts: { queueTimeout: 300 } });
    const done = await waitState(node, id);
    expect(done.job.state).toBe("timed_out");
    expect(done.attempts).toHaveLength(0);
    expect(done.history.find((e: any) => e.to === "timed_out").data.timeout).toBe("queueTimeout");
    await node.http("POST", `/api/jobs/${blocker}/cancel`);
  });

  test("totalTimeout ends the job whatever the retry policy says", async () => {
    const retry = { maxAttempts: 5, initialDelay: 50, retryOn: ["TIMED_OUT", "WORKER_LOST"] };
    const id = await submit(node, script(LONG, { timeouts: { totalTimeout: 700 }, retry }));
    const done = await waitState(node, id);
    expect(done.job.state).toBe("timed_out");
    expect(done.attempts).toHaveLength(1);
    expect(done.attempts[0].reason).toMatch(/totalTimeout/);
    await waitFor(() => isGone(done.attempts[0].handle.pid), { message: "worker outlived totalTimeout" });
  });
});

describe("operator actions", () => {
  test("POST /retry runs a failed job again as a new attempt, recorded; a succeeded job cannot be retried", async () => {
    const id = await submit(node, script("process.exit(4)"));
    expect((await waitState(node, id)).job.state).toBe("failed");
    const retried = await node.http("POST", `/api/jobs/${id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body.job.state).toBe("queued");
    const done = await waitState(node, id);
    expect(done.attempts.map((a: any) => a.exitCode)).toEqual([4, 4]);
    expect(done.history.some((e: any) => e.kind === "job.retried" && e.data.by === "admin")).toBe(true); // the key's name

    const ok = await submit(node, script("0"));
    await waitState(node, ok);
    const refused = await node.http("POST", `/api/jobs/${ok}/retry`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.type).toBe("INVALID_TRANSITION");
  });

  test("a stop job cancels its deployment's live jobs, recording who asked", async () => {
    const running = await submit(node, script(LONG, { deploymentId: "dep-stop" }));
    const before = await waitState(node, running, ["running"]);
    const stop = await submit(node, { type: "stop", deploymentId: "dep-stop" });
    const cancelled = await waitState(node, running);
    expect(cancelled.job.state).toBe("cancelled");
    expect(cancelled.history.find((e: any) => e.to === "cancelled").data).toMatchObject({ reason: `stopped by stop job ${stop}`, by: `job:${stop}` });
    await waitFor(() => isGone(before.attempts[0].handle.pid), { message: "stopped job's worker still running" });
    expect((await waitState(node, stop)).job.state).toBe("succeeded");
  });

  test("with coalesce, a newer queued job supersedes an older queued one of the same deployment", async () => {
    const blocker = await submit(node, { type: "script-b", deploymentId: "co", script: LONG });
    await waitState(node, blocker, ["running"]);
    const older = await submit(node, { type: "script-b", deploymentId: "co", script: "0" });
    const newer = await submit(node, { type: "script-b", deploymentId: "co", script: "0" });
    const superseded = await waitState(node, older);
    expect(superseded.job.state).toBe("cancelled");
    expect(superseded.job.error.message).toBe(`superseded by job ${newer}`);
    await node.http("POST", `/api/jobs/${blocker}/cancel`);
    expect((await waitState(node, newer)).job.state).toBe("succeeded");
  });

  test("cancel racing completion, 100 times: each job ends in exactly one final state", async () => {
    const ids = await Promise.all(Array.from({ length: 100 }, () => submit(node, script("0"))));
    await Promise.all(ids.map(async (id, i) => {
      await new Promise((r) => setTimeout(r, (i * 7) % 400)); // spread the cancels over the run
      await node.http("POST", `/api/jobs/${id}/cancel`);
    }));
    const outcomes = new Map<string, number>();
    for (const id of ids) {
      const done = await waitState(node, id);
      const finals = done.history.filter((e: any) => FINAL.includes(e.to));
      expect(finals).toHaveLength(1);
      expect(finals[0].to).toBe(done.job.state);
      outcomes.set(done.job.state, (outcomes.get(done.job.state) ?? 0) + 1);
    }
    expect([...outcomes.keys()].every((s) => s === "succeeded" || s === "cancelled")).toBe(true);
  }, 120_000);
});

test("the reaper stops a worker no live attempt owns", async () => {
  const handle: any = await node.broker.call("targets.process.launch", {
    jobId: "ghost",
    attempt: 1,
    key: "ghost:1",
    workload: { command: [process.execPath, "-e", LONG], env: {} },
    labels: {},
  });
  expect(isGone(handle.pid)).toBe(false);
  await waitFor(() => isGone(handle.pid), { timeout: 10_000, message: "orphan worker was not reaped" });
});

test("200 jobs under a global limit of 5 and 2 per type: limits hold and all finish", async () => {
  const limited = await startNode({
    configure: (c) => {
      c.plugins.push({ use: PLUGIN });
      c.limits = { global: 5, byType: { "script-a": 2, "script-b": 2, "script-c": 2 } };
    },
  });
  try {
    const types = ["script-a", "script-b", "script-c"];
    const ids = [];
    for (let i = 0; i < 200; i++) ids.push(await submit(limited, { type: types[i % 3], deploymentId: `lim-${i}`, script: "setTimeout(() => {}, 20)" }));
    let sampledMax = 0;
    await waitFor(
      async () => {
        const counts = await limited.rt.store.countByState();
        const active = counts.filter((c) => c.state === "launching" || c.state === "running");
        sampledMax = Math.max(sampledMax, active.reduce((n, c) => n + c.count, 0));
        for (const t of types) expect(active.filter((c) => c.type === t).reduce((n, c) => n + c.count, 0)).toBeLessThanOrEqual(2);
        return counts.filter((c) => c.state === "succeeded").reduce((n, c) => n + c.count, 0) === 200;
      },
      { timeout: 180_000, interval: 20, message: "the 200 jobs did not all succeed" },
    );
    expect(sampledMax).toBeLessThanOrEqual(5);
    expect(sampledMax).toBeGreaterThan(1); // they did run side by side
    // Exact check from stored intervals: at no instant did more than 5 attempts hold compute.
    const spans = [];
    for (const id of ids) for (const a of await limited.rt.store.getAttempts(id)) spans.push([a.launchedAt, 1], [a.endedAt!, -1]);
    spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    let live = 0;
    let max = 0;
    for (const [, d] of spans) max = Math.max(max, (live += d));
    expect(max).toBeLessThanOrEqual(5);
  } finally {
    await limited.stop();
  }
}, 240_000);
