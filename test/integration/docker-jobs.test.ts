import { containersWithLabel, ensureTestImage, removeContainersWithLabel } from "../support/docker";
import { withDocker } from "../support/docker-config";
import { startNode, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/** Jobs through the whole node (gateway, dispatcher, lifecycle) onto real containers. */
const labelPrefix = `btjobs${process.pid}`;
const FINAL = ["succeeded", "failed", "timed_out", "cancelled", "rejected"];
let node: TestNode;

async function waitState(id: string, states: string[], timeout = 60_000) {
  return waitFor(async () => {
    const r = await node.http("GET", `/api/jobs/${id}`);
    return states.includes(r.body?.job?.state) ? r.body : null;
  }, { timeout, message: `job ${id} never reached ${states.join("|")}` });
}

beforeAll(async () => {
  ensureTestImage();
  node = await startNode({ configure: (config) => withDocker(config, labelPrefix) });
}, 120_000);

afterAll(async () => {
  await node?.stop();
  removeContainersWithLabel(`${labelPrefix}.key`);
});

describe("jobs on the docker target", () => {
  test("a job routed to docker by type runs in a container labelled with its job; cancel stops it within the grace", async () => {
    const res = await node.http("POST", "/api/jobs", { type: "container-script", deploymentId: "dock-1", script: "trap 'exit 143' TERM; sleep 300 & wait" });
    expect(res.status).toBe(202);
    const id = res.body.job.id;
    const running = await waitState(id, ["running"]);
    expect(running.attempts[0].target).toBe("docker");
    expect(containersWithLabel(`${labelPrefix}.job=${id}`, { all: false })).toHaveLength(1);
    expect(containersWithLabel(`${labelPrefix}.deployment=dock-1`, { all: false })).toHaveLength(1);

    const cancelled = Date.now();
    expect((await node.http("POST", `/api/jobs/${id}/cancel`, { reason: "test" })).status).toBe(200);
    await waitFor(() => containersWithLabel(`${labelPrefix}.job=${id}`, { all: false }).length === 0, { timeout: 30_000, message: "the container stopped" });
    expect(Date.now() - cancelled).toBeLessThan(2_000 + 5_000); // grace + slack for a busy engine
    expect((await waitState(id, FINAL)).job.state).toBe("cancelled");
  }, 120_000);

  test("a job may ask for docker itself; its exit code and output are its outcome", async () => {
    const ok = await node.http("POST", "/api/jobs", { type: "container-script-b", deploymentId: "dock-2", script: "echo from-the-container", target: "docker" });
    const bad = await node.http("POST", "/api/jobs", { type: "container-script-b", deploymentId: "dock-3", script: "exit 3", target: "docker" });
    const done = await waitState(ok.body.job.id, FINAL);
    expect(done.job.state).toBe("succeeded");
    expect(done.attempts[0]).toMatchObject({ target: "docker", exitCode: 0, outcome: "SUCCEEDED" });
    expect(done.attempts[0].handle.name).toMatch(new RegExp(`^${labelPrefix}-`));
    const logs = await node.http("GET", `/api/jobs/${ok.body.job.id}/logs`);
    expect(logs.body.attempts[0].lines).toContain("from-the-container");
    const failed = await waitState(bad.body.job.id, FINAL);
    expect(failed.job.state).toBe("failed");
    expect(failed.attempts[0]).toMatchObject({ exitCode: 3, outcome: "EXIT_NONZERO" });
  }, 120_000);
});
