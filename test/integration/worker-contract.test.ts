import path from "node:path";
import { WORKER_CONTRACT, WORKER_ENV_VARS, WORKER_ROUTES, workerOpenApiPaths } from "@blacktree/sdk/worker";
import { ROUTES } from "../../lib/gateway/routes";
import { ROOT, startNode, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/**
 * The worker contract against a real node: a worker that uses only the SDK's worker client
 * (test/support/workers/contract-worker.ts), run by the process target, reports to the real
 * gateway; the machine-readable contract matches the gateway's routes and the env the
 * orchestrator really sets.
 */
const PLUGIN = path.join(ROOT, "test/support/plugins/contract-plugin.ts");
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];
let node: TestNode;

async function job(id: string, states = FINAL) {
  return waitFor(
    async () => {
      const r = await node.http("GET", `/api/jobs/${id}`);
      return states.includes(r.body?.job?.state) ? r.body : null;
    },
    { timeout: 30_000, message: `job ${id} reached ${states.join("|")}` },
  );
}

async function logLines(id: string): Promise<string[]> {
  return (await node.http("GET", `/api/jobs/${id}/logs`)).body.attempts.at(-1).lines;
}

beforeAll(async () => {
  node = await startNode({ configure: (c) => c.plugins.push({ use: PLUGIN }) });
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

describe("the worker contract", () => {
  test("its routes are the gateway's worker routes, and its OpenAPI paths name each", () => {
    const gateway = ROUTES.filter((r) => r.mount === "/api/worker").map((r) => `${r.method} /${r.path}`).sort();
    expect(WORKER_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(gateway);
    const paths = workerOpenApiPaths();
    expect(Object.entries(paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort()).toEqual(gateway.map((r) => r.replace(" /", " /api/worker/")));
    expect(WORKER_CONTRACT.env).toBe(WORKER_ENV_VARS);
  });

  test("a worker on the client reports started, pushed log lines and a result the job shows; it gets exactly the contract's env and its secret once", async () => {
    const res = await node.http("POST", "/api/jobs", { type: "contract", deploymentId: "contract-1", mode: "report", apiToken: "tok-contract-0123456789" });
    expect(res.status).toBe(202);
    const id = res.body.job.id;
    const done = await job(id);
    expect(done.job.state).toBe("succeeded");
    expect(done.job.result).toMatchObject({
      success: true,
      message: "reported",
      started: true,
      // Every variable the contract lists, and no other BLACKTREE_* one.
      // TRACEPARENT only when traces are exported (not on this node).
      envNames: Object.entries(WORKER_ENV_VARS).filter(([, v]) => v.always).map(([k]) => k).sort().join(","),
      secondFetch: "403 FORBIDDEN",
      attempt: 1,
      jobType: "contract",
      deploymentId: "contract-1",
      echo: "***",
    });
    expect(done.history).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "attempt.secrets_fetched", data: expect.objectContaining({ names: ["apiToken"] }) })]));
    expect(done.history.filter((e: { kind: string }) => e.kind === "attempt.secrets_fetched")).toHaveLength(1);
    // The worker wrote nothing to stdout (echo off): the job's log is what it pushed, redacted.
    expect(await logLines(id)).toEqual(["pushed line 1", "pushed line 2", "the token is ***"]);
    expect(JSON.stringify(done)).not.toContain("tok-contract-0123456789");
  }, 60_000);

  test("a result with retryable: false fails the attempt for good, with the worker's error, even with retries left", async () => {
    const res = await node.http("POST", "/api/jobs", { type: "contract", deploymentId: "contract-2", mode: "fail", retry: { maxAttempts: 3, initialDelay: 0, retryOn: ["EXIT_NONZERO"] } });
    const done = await job(res.body.job.id);
    expect(done.job).toMatchObject({ state: "failed", attempt: 1, error: { type: "EXIT_NONZERO", message: "the input cannot work" } });
    // success: false fails the attempt even when the worker exits 0.
    const zero = await job((await node.http("POST", "/api/jobs", { type: "contract", deploymentId: "contract-3", mode: "fail", exitCode: 0 })).body.job.id);
    expect(zero.job).toMatchObject({ state: "failed", error: { message: "the input cannot work" } });
    expect(zero.attempts[0]).toMatchObject({ exitCode: 0, outcome: "EXIT_NONZERO" });
  }, 60_000);

  test("a stale attempt is told so: after a cancel, the worker's reports get 403 FORBIDDEN and it stops", async () => {
    const res = await node.http("POST", "/api/jobs", { type: "contract", deploymentId: "contract-4", mode: "linger" });
    const id = res.body.job.id;
    await job(id, ["running"]);
    // While it runs, the job's log is what the worker pushed.
    await waitFor(async () => (await logLines(id)).includes("lingering"), { message: "the pushed line is in the running job's log" });
    expect((await node.http("POST", `/api/jobs/${id}/cancel`, { reason: "contract test" })).status).toBe(200);
    const done = await waitFor(
      async () => {
        const r = await node.http("GET", `/api/jobs/${id}`);
        return r.body.attempts[0].state === "stopped" ? r.body : null;
      },
      { timeout: 30_000, message: "the cancelled attempt's worker stopped" },
    );
    expect(done.job.state).toBe("cancelled");
    const lines = await logLines(id);
    expect(lines).toEqual(expect.arrayContaining(["got SIGTERM: carrying on", "stale: 403 FORBIDDEN"]));
  }, 60_000);
});
