import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { appImage, removeImages } from "../support/app-image";
import { containersWithLabel, removeContainersWithLabel } from "../support/docker";
import { freePort, ROOT, startNode, tempDir, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/**
 * build + autoDeploy → deploy, on the real Docker engine: the build worker builds the
 * repository's Dockerfile (FROM a local app base image: no registry), and the follow-up
 * deploy runs that image (its `imageUrl`, a local tag) as the deployment's container on
 * network `host`, where it answers on `portNumber`. A second build replaces it; a stop removes it.
 */
const RUN = randomBytes(3).toString("hex");
const BASE = `bt-h11b-autobase-${RUN}:1`;
const DEPLOYMENT = `bt-h11b-auto-${RUN}`;
let node: TestNode;
let repo: string;

const git = (...args: string[]) => execFileSync("git", ["-C", repo, ...args], { stdio: "pipe" });

beforeAll(async () => {
  appImage(BASE, 'exec httpd -f -p "$PORT" -h /www');
  repo = path.join(tempDir("bt-h11b-repo-"), "repo");
  execFileSync("bash", [path.join(ROOT, "examples/create-local-repo.sh"), repo]);
  fs.writeFileSync(path.join(repo, "Dockerfile"), `FROM ${BASE}\nCOPY hello.txt /www/index.html\n`);
  git("commit", "-qam", "serve hello.txt");
  Object.assign(process.env, { BLACKTREE_DEPLOYER: "docker", BLACKTREE_DEPLOY_DOCKER_NETWORK: "host", BLACKTREE_DEPLOY_TIMEOUT_MS: "10000", BLACKTREE_DEPLOY_POLL_MS: "100" });
  node = await startNode();
}, 120_000);

afterAll(async () => {
  removeContainersWithLabel(`blacktree.deployment=${DEPLOYMENT}`);
  await node?.stop(); // removes the images its builds tagged
  removeImages([BASE]);
});

async function job(id: string, states = ["succeeded", "failed", "timed_out", "cancelled"]) {
  return waitFor(async () => {
    const r = await node.http("GET", `/api/jobs/${id}`);
    return states.includes(r.body?.job?.state) ? r.body : null;
  }, { timeout: 90_000, message: `job ${id} never reached ${states.join("|")}` });
}

async function answer(port: number): Promise<string | null> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) })).text()).trim();
  } catch {
    return null;
  }
}

/** Builds the repository with autoDeploy and follows the deploy it creates to its end. */
async function buildAndDeploy(port: number) {
  const res = await node.http("POST", "/api/jobs", { deploymentId: DEPLOYMENT, repository: repo, autoDeploy: true, portNumber: String(port) });
  expect(res.status).toBe(202);
  const build = await job(res.body.job.id);
  expect(build.job.state).toBe("succeeded");
  expect(build.job.result.imageUrl).toMatch(new RegExp(`^blacktree/${DEPLOYMENT}:`));
  // The follow-up is an effect of the success, carried out right after it commits.
  const followUp = await waitFor(async () => (await node.http("GET", `/api/jobs/${build.job.id}`)).body.history.find((e: any) => e.kind === "job.follow_up"), { message: "no follow-up recorded" });
  expect(followUp.data.type).toBe("deploy");
  const deploy = await job(followUp.data.jobId);
  expect(deploy.job.parentId).toBe(build.job.id);
  expect(deploy.job.params).toEqual(expect.objectContaining({ deploymentId: DEPLOYMENT, imageUrl: build.job.result.imageUrl, portNumber: port }));
  expect(deploy.job.state).toBe("succeeded");
  return deploy;
}

test("a successful build with autoDeploy deploys its image, which answers on its port; a second build replaces it; a stop removes it", async () => {
  const port = await freePort();
  await buildAndDeploy(port);
  expect(await answer(port)).toBe("hello from blacktree");
  const first = containersWithLabel(`blacktree.deployment=${DEPLOYMENT}`);
  expect(first).toHaveLength(1);

  fs.writeFileSync(path.join(repo, "hello.txt"), "the second version\n");
  git("commit", "-qam", "second version");
  await buildAndDeploy(port);
  expect(await answer(port)).toBe("the second version");
  const second = containersWithLabel(`blacktree.deployment=${DEPLOYMENT}`);
  expect(second).toHaveLength(1);
  expect(second).not.toEqual(first);

  const stop = await node.http("POST", "/api/jobs", { type: "stop", deploymentId: DEPLOYMENT });
  expect((await job(stop.body.job.id)).job.state).toBe("succeeded");
  expect(containersWithLabel(`blacktree.deployment=${DEPLOYMENT}`)).toEqual([]);
  expect(await answer(port)).toBeNull();
}, 240_000);
