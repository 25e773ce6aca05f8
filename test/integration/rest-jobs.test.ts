import { execFileSync } from "node:child_process";
import path from "node:path";
import { ROOT, startNode, tempDir, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";
import { restJobId } from "../../lib/jobs/model";
import { isGone } from "../support/process";

/** Drives a whole node over HTTP: real broker, gateway, SQLite, process target and reference worker. */
let node: TestNode;
let repo: string;

const FINAL = ["succeeded", "failed", "timed_out", "cancelled", "rejected"];

async function waitFinal(id: string, timeout = 30_000) {
  return waitFor(
    async () => {
      const r = await node.http("GET", `/api/jobs/${id}`);
      return FINAL.includes(r.body?.job?.state) ? r.body : null;
    },
    { timeout, message: `job ${id} never reached a final state` },
  );
}

beforeAll(async () => {
  repo = path.join(tempDir(), "hello");
  execFileSync("bash", [path.join(ROOT, "examples/create-local-repo.sh"), repo]);
  node = await startNode();
});

afterAll(async () => {
  await node?.stop();
});

const build = () => ({ type: "build", deploymentId: "e2e", repository: repo, branch: "main", dockerFilePath: "Dockerfile", contextDir: "." });

describe("REST jobs end to end", () => {
  test("a build of a local repository succeeds, with its history and logs", async () => {
    const res = await node.http("POST", "/api/jobs", build());
    expect(res.status).toBe(202);
    expect(res.body.job.state).toBe("queued");
    const done = await waitFinal(res.body.job.id);
    expect(done.job.state).toBe("succeeded");
    expect(done.attempts).toHaveLength(1);
    expect(done.attempts[0]).toEqual(expect.objectContaining({ state: "exited", exitCode: 0, outcome: "SUCCEEDED" }));
    const states = done.history.filter((e: any) => e.to).map((e: any) => e.to);
    expect(states[0]).toBe("queued");
    expect(states[1]).toBe("launching");
    expect(states[states.length - 1]).toBe("succeeded");
    const logs = await node.http("GET", `/api/jobs/${res.body.job.id}/logs`);
    expect(logs.status).toBe(200);
    expect(logs.body.attempts[0].lines.join("\n")).toMatch(/cloning/);
  });

  test("a build whose Dockerfile is missing fails once, with a clear error", async () => {
    const res = await node.http("POST", "/api/jobs", { ...build(), dockerFilePath: "docker/Dockerfile.missing" });
    const done = await waitFinal(res.body.job.id);
    expect(done.job.state).toBe("failed");
    expect(done.job.error.message).toMatch(/Dockerfile not found/);
    expect(done.attempts).toHaveLength(1); // a broken Dockerfile is not worth a retry
  });

  test.each([
    // Bodies are made when the test runs: the repository exists only after beforeAll.
    ["a wrong type", () => ({ ...build(), autoDeploy: "perhaps" }), 422, "autoDeploy"],
    ["a missing field", () => ({ ...build(), deploymentId: undefined }), 422, "deploymentId"],
    ["an unknown task type", () => ({ ...build(), type: "teleport" }), 422, "type"],
    ["a dangerous branch", () => ({ ...build(), branch: "--upload-pack=touch /tmp/x" }), 422, "branch"],
    ["invalid JSON", () => "{ not json", 400, "body"],
  ])("%s is refused with the field named and nothing stored", async (_what, body, status, field) => {
    const before = await node.http("GET", "/api/jobs?limit=500");
    const res = await node.http("POST", "/api/jobs", body());
    expect(res.status).toBe(status);
    expect(res.body.error.fields.map((f: any) => f.field)).toContain(field);
    expect(typeof res.body.error.type).toBe("string");
    const after = await node.http("GET", "/api/jobs?limit=500");
    expect(after.body.items.length).toBe(before.body.items.length);
  });

  test("a worker that outlives runTimeout ends timed_out and its process is gone", async () => {
    const res = await node.http("POST", "/api/jobs", { type: "test", deploymentId: "slow", repository: repo, testCommand: "sleep 30", timeouts: { runTimeout: 1500 } });
    expect(res.status).toBe(202);
    const done = await waitFinal(res.body.job.id);
    expect(done.job.state).toBe("timed_out");
    expect(done.attempts[0].reason).toMatch(/runTimeout/);
    const pid = done.attempts[0].handle.pid;
    await waitFor(() => isGone(pid), { timeout: 10_000, message: `worker ${pid} still alive` });
  });

  test("a job failing with maxAttempts 3 shows three attempts with growing delays", async () => {
    const retry = { maxAttempts: 3, initialDelay: 300, backoffCoefficient: 2, jitter: "none", retryOn: ["EXIT_NONZERO"] };
    const res = await node.http("POST", "/api/jobs", { type: "test", deploymentId: "flaky", repository: repo, testCommand: "exit 3", retry });
    const done = await waitFinal(res.body.job.id);
    expect(done.job.state).toBe("failed");
    expect(done.attempts.map((a: any) => a.exitCode)).toEqual([3, 3, 3]);
    const delays = done.history.filter((e: any) => e.to === "retrying").map((e: any) => e.data.delay);
    expect(delays).toEqual([300, 600]);
    const starts = done.attempts.map((a: any) => Date.parse(a.launchedAt));
    const ends = done.attempts.map((a: any) => Date.parse(a.endedAt));
    expect(starts[1] - ends[0]).toBeGreaterThanOrEqual(300);
    expect(starts[2] - ends[1]).toBeGreaterThanOrEqual(600);
  });

  test("cancelling a running job stops its process", async () => {
    const res = await node.http("POST", "/api/jobs", { type: "test", deploymentId: "cancel-me", repository: repo, testCommand: "sleep 30" });
    const id = res.body.job.id;
    const running = await waitFor(async () => {
      const r = await node.http("GET", `/api/jobs/${id}`);
      return r.body.job.state === "running" ? r.body : null;
    });
    const cancel = await node.http("POST", `/api/jobs/${id}/cancel`, { reason: "changed my mind" });
    expect(cancel.status).toBe(200);
    expect(cancel.body.job.state).toBe("cancelled");
    const pid = running.attempts[0].handle.pid;
    await waitFor(() => isGone(pid), { timeout: 10_000, message: `worker ${pid} still alive after cancel` });
    const history = (await node.http("GET", `/api/jobs/${id}`)).body.history;
    expect(history.find((e: any) => e.to === "cancelled").data).toMatchObject({ reason: "changed my mind", by: "admin" });
  });

  test("the token is stored apart, never returned, and wiped when the job ends", async () => {
    const token = "ghp_e2eSecretTokenValue0123456789";
    const res = await node.http("POST", "/api/jobs", { ...build(), token });
    expect(res.text).not.toContain(token);
    expect(await node.rt.store.getSecrets(res.body.job.id)).toEqual({ token });
    const done = await waitFinal(res.body.job.id);
    expect(done.job.state).toBe("succeeded");
    expect(JSON.stringify(done)).not.toContain(token);
    expect((await node.http("GET", `/api/jobs/${res.body.job.id}/logs`)).text).not.toContain(token);
    expect(await node.rt.store.getSecrets(res.body.job.id)).toEqual({});
  });

  test("the same Idempotency-Key returns the existing job", async () => {
    const first = await node.http("POST", "/api/jobs", build(), { "Idempotency-Key": "same-key-1" });
    const second = await node.http("POST", "/api/jobs", build(), { "Idempotency-Key": "same-key-1" });
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body.job.id).toBe(first.body.job.id);
    expect(first.body.job.id).toBe(restJobId("admin", "same-key-1")); // the key, in the caller's namespace
    await waitFinal(first.body.job.id);
  });

  test("lists filter and page; unknown jobs are 404 with the error body", async () => {
    const page = await node.http("GET", "/api/jobs?type=test&limit=1");
    expect(page.status).toBe(200);
    expect(page.body.items).toHaveLength(1);
    expect(page.body.items[0].type).toBe("test");
    const next = await node.http("GET", `/api/jobs?type=test&limit=1&cursor=${page.body.nextCursor}`);
    expect(next.body.items[0].id).not.toBe(page.body.items[0].id);
    const missing = await node.http("GET", "/api/jobs/nope");
    expect(missing.status).toBe(404);
    expect(missing.body.error.type).toBe("JOB_NOT_FOUND");
    expect((await node.http("GET", "/api/jobs?state=bogus")).status).toBe(422);
    expect((await node.http("GET", "/api/~node/health")).status).toBe(404);
  });

  test("plugins, health and metrics", async () => {
    const plugins = await node.http("GET", "/api/plugins");
    expect(plugins.body.taskTypes.map((t: any) => t.name).sort()).toEqual(["build", "deploy", "stop", "test"]);
    expect(plugins.body.targets.map((t: any) => t.name)).toEqual(["process"]);
    const health = await node.http("GET", "/health");
    expect(health.status).toBe(200);
    expect(health.body.checks.store.ok).toBe(true);
    const metrics = await node.http("GET", "/metrics");
    expect(metrics.text).toMatch(/blacktree_jobs\{state="succeeded",type="build",target="process"\} \d+/);
    expect(metrics.text).toMatch(/blacktree_job_duration_seconds_count/);
  });
});
