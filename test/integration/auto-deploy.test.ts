import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ROOT, startNode, tempDir, TestNode } from "../support/orchestrator";
import { isGone } from "../support/process";
import { waitFor } from "../support/wait";

/**
 * build + autoDeploy → deploy, then stop. No Docker engine runs here, so a stand-in
 * `docker` CLI (the lowest level the workers touch) goes first on the workers' PATH:
 * `build` succeeds, `run` stays up like a container would, `rm` succeeds.
 */
const FAKE_DOCKER = `#!/bin/sh
case "$1" in
  info) echo 28.0.0 ;;
  build) echo "built" ;;
  run) exec sleep 60 ;;
  rm) echo "removed" ;;
esac
`;

let node: TestNode;
let repo: string;
const originalPath = process.env.PATH;

beforeAll(async () => {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, "bin"));
  fs.writeFileSync(path.join(dir, "bin", "docker"), FAKE_DOCKER, { mode: 0o755 });
  process.env.PATH = `${path.join(dir, "bin")}:${originalPath}`; // the process target hands PATH to workers
  repo = path.join(dir, "repo");
  execFileSync("bash", [path.join(ROOT, "examples/create-local-repo.sh"), repo]);
  node = await startNode();
});
afterAll(async () => {
  process.env.PATH = originalPath;
  await node?.stop();
});

async function job(id: string, states = ["succeeded", "failed", "timed_out", "cancelled"]) {
  return waitFor(async () => {
    const r = await node.http("GET", `/api/jobs/${id}`);
    return states.includes(r.body?.job?.state) ? r.body : null;
  }, { timeout: 30_000, message: `job ${id} never reached ${states.join("|")}` });
}

test("a successful build with autoDeploy creates the deploy with its imageUrl; a stop ends the deploy", async () => {
  const res = await node.http("POST", "/api/jobs", { deploymentId: "auto-dep", repository: repo, autoDeploy: true, portNumber: "8080" });
  expect(res.status).toBe(202);
  const build = await job(res.body.job.id);
  expect(build.job.state).toBe("succeeded");
  expect(build.job.result.imageUrl).toMatch(/^blacktree\/auto-dep:/);
  // The follow-up is an effect of the success, carried out right after it commits.
  const followUp = await waitFor(async () => (await node.http("GET", `/api/jobs/${build.job.id}`)).body.history.find((e: any) => e.kind === "job.follow_up"), { message: "no follow-up recorded" });
  expect(followUp.data.type).toBe("deploy");

  const deploy = await job(followUp.data.jobId, ["running"]);
  expect(deploy.job.parentId).toBe(build.job.id);
  expect(deploy.job.params).toEqual(expect.objectContaining({ deploymentId: "auto-dep", imageUrl: build.job.result.imageUrl, portNumber: 8080 }));

  const stop = await node.http("POST", "/api/jobs", { type: "stop", deploymentId: "auto-dep" });
  const ended = await job(deploy.job.id);
  expect(ended.job.state).toBe("cancelled");
  expect(ended.job.error.message).toBe(`stopped by stop job ${stop.body.job.id}`);
  await waitFor(() => isGone(deploy.attempts[0].handle.pid), { message: "the deploy worker outlived the stop" });
  expect((await job(stop.body.job.id)).job.state).toBe("succeeded");
});
