import { execFileSync } from "node:child_process";
import path from "node:path";
import { ROOT, startNode, tempDir, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/** What a user of a real node noticed in /metrics, /api/plugins and job results (issue 14). */
let node: TestNode;
let repo: string;

const FINAL = ["succeeded", "failed", "timed_out", "cancelled", "rejected"];

async function waitFinal(id: string) {
  return waitFor(
    async () => {
      const r = await node.http("GET", `/api/jobs/${id}`);
      return FINAL.includes(r.body?.job?.state) ? r.body : null;
    },
    { timeout: 30_000, message: `job ${id} never reached a final state` },
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

test("process metrics carry the blacktree_ prefix once", async () => {
  const text = (await node.http("GET", "/metrics")).text;
  expect(text).toMatch(/^blacktree_process_cpu_seconds_total /m);
  expect(text).toMatch(/^blacktree_nodejs_eventloop_lag_p99_seconds /m);
  expect(text).not.toMatch(/blacktree_process_process_/);
  expect(text).not.toMatch(/blacktree_process_nodejs_/);
});

test("a non-build job's result has no imageUrl, and every transition counted names its type", async () => {
  const res = await node.http("POST", "/api/jobs", { type: "test", deploymentId: "findings", repository: repo, testCommand: "true" });
  expect(res.status).toBe(202);
  const done = await waitFinal(res.body.job.id);
  expect(done.job.state).toBe("succeeded");
  expect(done.job.result).not.toHaveProperty("imageUrl");
  // Transitions are counted by the status drain, after the commit: wait for the final one.
  const text = await waitFor(
    async () => {
      const t = (await node.http("GET", "/metrics")).text;
      return /blacktree_job_transitions_total\{to="succeeded",type="test"\} [1-9]/.test(t) ? t : null;
    },
    { timeout: 10_000, message: "the succeeded transition was never counted" },
  );
  for (const to of ["launching", "running"]) expect(text).toMatch(new RegExp(`blacktree_job_transitions_total\\{to="${to}",type="test"\\} [1-9]`));
  expect(text).not.toMatch(/blacktree_job_transitions_total\{[^}]*type=""/);
});

test("a retried job's retrying transition names its type; a failed test job's result has no imageUrl", async () => {
  const res = await node.http("POST", "/api/jobs", { type: "test", deploymentId: "findings-retry", repository: repo, testCommand: "exit 3", retry: { maxAttempts: 2, retryOn: ["EXIT_NONZERO"], initialDelay: 10, maxDelay: 10 } });
  expect(res.status).toBe(202);
  const done = await waitFinal(res.body.job.id);
  expect(done.job.state).toBe("failed");
  expect(done.attempts).toHaveLength(2);
  expect(done.job.result).toEqual(expect.objectContaining({ success: false }));
  expect(done.job.result).not.toHaveProperty("imageUrl");
  const text = await waitFor(
    async () => {
      const t = (await node.http("GET", "/metrics")).text;
      return /blacktree_job_transitions_total\{to="failed",type="test"\} [1-9]/.test(t) ? t : null;
    },
    { timeout: 10_000, message: "the failed transition was never counted" },
  );
  expect(text).toMatch(/blacktree_job_transitions_total\{to="retrying",type="test"\} [1-9]/);
  expect(text).not.toMatch(/blacktree_job_transitions_total\{[^}]*type=""/);
});

test("a failed build's job result is its attempt's result", async () => {
  const res = await node.http("POST", "/api/jobs", { type: "build", deploymentId: "findings-fail", repository: repo, branch: "main", dockerFilePath: "docker/Dockerfile.missing", contextDir: "." });
  const done = await waitFinal(res.body.job.id);
  expect(done.job.state).toBe("failed");
  const last = done.attempts[done.attempts.length - 1];
  expect(last.result).toEqual(expect.objectContaining({ success: false }));
  expect(done.job.result).toEqual(last.result);
});

test("/api/plugins shows regex patterns as strings", async () => {
  const res = await node.http("GET", "/api/plugins");
  expect(res.status).toBe(200);
  const build = res.body.taskTypes.find((t: any) => t.name === "build");
  expect(build.params.deploymentId.pattern).toBe("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");
  expect(res.text).not.toMatch(/"pattern":\{\}/);
});
