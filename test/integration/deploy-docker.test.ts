import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appImage, httpAppImage, removeImages } from "../support/app-image";
import { containersWithLabel, removeContainersWithLabel } from "../support/docker";
import { freePort, startNode, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/**
 * `deploy` and `stop` on the real Docker engine: the process target runs the host deploy
 * worker, whose Docker deployer runs each image as a long-running container of the
 * deployment on network `host` (dockerd here has no bridge), so its port answers on
 * 127.0.0.1.
 */
const RUN = randomBytes(3).toString("hex");
const IMAGE = {
  v1: `bt-h11b-app-${RUN}:v1`,
  v2: `bt-h11b-app-${RUN}:v2`,
  silent: `bt-h11b-app-${RUN}:silent`,
  crash: `bt-h11b-app-${RUN}:crash`,
};
const deployments: string[] = [];
let node: TestNode;

beforeAll(async () => {
  httpAppImage(IMAGE.v1, "version-one");
  httpAppImage(IMAGE.v2, "version-two");
  appImage(IMAGE.silent, "exec sleep 3600");
  appImage(IMAGE.crash, "echo 'boom: DATABASE_URL is not set' >&2; exit 3");
  // The deploy task types hand these to the worker (the process target gives it nothing else).
  process.env.BLACKTREE_DEPLOYER = "docker";
  process.env.BLACKTREE_DEPLOY_DOCKER_NETWORK = "host";
  process.env.BLACKTREE_DEPLOY_TIMEOUT_MS = "3000";
  process.env.BLACKTREE_DEPLOY_POLL_MS = "100";
  node = await startNode();
}, 120_000);

afterAll(async () => {
  await node?.stop();
  for (const id of deployments) removeContainersWithLabel(`blacktree.deployment=${id}`);
  removeImages(Object.values(IMAGE));
});

function deploymentId(name: string): string {
  const id = `bt-h11b-${name}-${RUN}`;
  deployments.push(id);
  return id;
}

const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];

async function run(body: Record<string, unknown>) {
  const res = await node.http("POST", "/api/jobs", body);
  expect(res.status).toBe(202);
  const id = res.body.job.id;
  const done = await waitFor(async () => {
    const r = await node.http("GET", `/api/jobs/${id}`);
    return FINAL.includes(r.body?.job?.state) ? r.body : null;
  }, { timeout: 60_000, message: `job ${id} never ended` });
  const logs = (await node.http("GET", `/api/jobs/${id}/logs`)).body.attempts.flatMap((a: any) => a.lines) as string[];
  return { job: done.job, attempts: done.attempts, logs };
}

/** The body the deployment answers with on its port, or null when nothing answers. */
async function answer(port: number): Promise<string | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) });
    return (await res.text()).trim();
  } catch {
    return null;
  }
}

const appContainers = (id: string) => containersWithLabel(`blacktree.deployment=${id}`);
const running = (id: string) => containersWithLabel(`blacktree.deployment=${id}`, { all: false });

test("a deploy runs the image until it answers on its port; a second replaces it; stop removes it", async () => {
  const dep = deploymentId("replace");
  const port = await freePort();
  const first = await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.v1, portNumber: String(port) });
  expect(first.job.state).toBe("succeeded");
  expect(first.job.result.message).toMatch(new RegExp(`answering on port ${port}`));
  expect(await answer(port)).toBe("version-one");
  const [v1] = appContainers(dep);
  expect(appContainers(dep)).toHaveLength(1);

  const second = await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.v2, portNumber: port });
  expect(second.job.state).toBe("succeeded");
  expect(await answer(port)).toBe("version-two");
  expect(appContainers(dep)).toHaveLength(1);
  expect(appContainers(dep)).not.toContain(v1); // the previous one is gone, not just stopped

  const stop = await run({ type: "stop", deploymentId: dep });
  expect(stop.job.state).toBe("succeeded");
  expect(stop.logs.join("\n")).toMatch(/removed container blacktree-app-/);
  expect(appContainers(dep)).toEqual([]);
  expect(await answer(port)).toBeNull();
}, 120_000);

test("a deploy whose container never answers, or exits, fails and leaves the previous version running", async () => {
  const dep = deploymentId("keep");
  const port = await freePort();
  expect((await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.v1, portNumber: port })).job.state).toBe("succeeded");
  const [v1] = appContainers(dep);

  const silent = await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.silent, portNumber: port });
  expect(silent.job.state).toBe("failed");
  expect(silent.attempts).toHaveLength(1);
  expect(silent.job.error.message).toMatch(new RegExp(`did not answer on port ${port} within 3000 ms`));
  expect(silent.logs.some((l) => l.startsWith("❌") && /did not answer on port/.test(l))).toBe(true);
  expect(appContainers(dep)).toEqual([v1]);
  expect(running(dep)).toEqual([v1]);
  expect(await waitFor(async () => ((await answer(port)) === "version-one" ? true : null), { message: "the previous version does not answer again" })).toBe(true);

  const crash = await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.crash, portNumber: port });
  expect(crash.job.state).toBe("failed");
  expect(crash.job.error.message).toMatch(/exited \(code 3\) before it answered/);
  expect(crash.logs.join("\n")).toMatch(/boom: DATABASE_URL is not set/);
  expect(appContainers(dep)).toEqual([v1]);
  expect(await waitFor(async () => ((await answer(port)) === "version-one" ? true : null), { message: "the previous version does not answer again" })).toBe(true);

  const missing = await run({ type: "deploy", deploymentId: dep, imageUrl: `bt-h11b-absent-${RUN}:nope`, portNumber: port });
  expect(missing.job.state).toBe("failed");
  expect(missing.job.error.message).toMatch(/is not on the engine and pulling it failed/);
  expect(await answer(port)).toBe("version-one");
}, 120_000);

test("a deploy cancelled while it waits removes its new container and starts the previous one again; a stop ends a deploy under way", async () => {
  const dep = deploymentId("cancel");
  const port = await freePort();
  expect((await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.v1, portNumber: port })).job.state).toBe("succeeded");
  const [v1] = appContainers(dep);
  process.env.BLACKTREE_DEPLOY_TIMEOUT_MS = "60000";
  try {
    const submit = async () => {
      const res = await node.http("POST", "/api/jobs", { type: "deploy", deploymentId: dep, imageUrl: IMAGE.silent, portNumber: port });
      await waitFor(() => appContainers(dep).length === 2 || null, { timeout: 30_000, message: "the new container never started" });
      return res.body.job.id as string;
    };
    const cancelled = await submit();
    expect((await node.http("POST", `/api/jobs/${cancelled}/cancel`, { reason: "changed my mind" })).status).toBe(200);
    await waitFor(() => (appContainers(dep).length === 1 && running(dep)[0] === v1) || null, { timeout: 30_000, message: "the cancelled deploy left its container, or did not start the previous one" });
    expect(await waitFor(async () => ((await answer(port)) === "version-one" ? true : null), { message: "the previous version does not answer again" })).toBe(true);
    expect((await node.http("GET", `/api/jobs/${cancelled}`)).body.job.state).toBe("cancelled");

    const underWay = await submit();
    const stop = await run({ type: "stop", deploymentId: dep });
    expect(stop.job.state).toBe("succeeded");
    const ended = (await node.http("GET", `/api/jobs/${underWay}`)).body.job;
    expect(ended.state).toBe("cancelled");
    expect(ended.error.message).toBe(`stopped by stop job ${stop.job.id}`);
    expect(appContainers(dep)).toEqual([]);
  } finally {
    process.env.BLACKTREE_DEPLOY_TIMEOUT_MS = "3000";
  }
}, 120_000);

test("on a network of its own, unpublished, the new version starts beside the previous one, which runs until the new one answers", async () => {
  const network = `bt-h11b-net-${RUN}`;
  execFileSync("docker", ["network", "create", network], { stdio: "ignore" });
  process.env.BLACKTREE_DEPLOY_DOCKER_NETWORK = network;
  process.env.BLACKTREE_DEPLOY_DOCKER_PUBLISH = "0"; // reached at its own address (as a reverse proxy on that network would)
  const dep = deploymentId("bluegreen");
  const inspect = (id: string) => JSON.parse(execFileSync("docker", ["inspect", id], { encoding: "utf8" }))[0];
  const addressOf = (id: string) => inspect(id).NetworkSettings.Networks[network].IPAddress as string;
  const get = async (id: string) => {
    try {
      return (await (await fetch(`http://${addressOf(id)}:8080/`, { signal: AbortSignal.timeout(2_000) })).text()).trim();
    } catch {
      return null;
    }
  };
  try {
    expect((await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.v1, portNumber: 8080 })).job.state).toBe("succeeded");
    const [v1] = appContainers(dep);
    const v1Started = inspect(v1).State.StartedAt;
    expect(await get(v1)).toBe("version-one");

    // A version that never answers: the previous one was never stopped.
    const silent = await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.silent, portNumber: 8080 });
    expect(silent.job.state).toBe("failed");
    expect(silent.logs.join("\n")).not.toMatch(/stopping the previous container/);
    expect(appContainers(dep)).toEqual([v1]);
    expect(inspect(v1).State.StartedAt).toBe(v1Started);
    expect(await get(v1)).toBe("version-one");

    const second = await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.v2, portNumber: 8080 });
    expect(second.job.state).toBe("succeeded");
    expect(second.logs.join("\n")).not.toMatch(/stopping the previous container/);
    const [v2] = appContainers(dep);
    expect(appContainers(dep)).toEqual([v2]);
    expect(v2).not.toBe(v1);
    expect(await get(v2)).toBe("version-two");
  } finally {
    process.env.BLACKTREE_DEPLOY_DOCKER_NETWORK = "host";
    delete process.env.BLACKTREE_DEPLOY_DOCKER_PUBLISH;
    removeContainersWithLabel(`blacktree.deployment=${dep}`);
    execFileSync("docker", ["network", "rm", network], { stdio: "ignore" });
  }
}, 120_000);

test("published on the host, readiness is the application's own answer, not Docker's proxy accepting on the host port", async () => {
  const network = `bt-h11b-pub-${RUN}`;
  execFileSync("docker", ["network", "create", network], { stdio: "ignore" });
  process.env.BLACKTREE_DEPLOY_DOCKER_NETWORK = network; // published: the default
  const dep = deploymentId("published");
  const port = await freePort();
  try {
    expect((await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.v1, portNumber: port })).job.state).toBe("succeeded");
    expect(await answer(port)).toBe("version-one"); // through the published host port
    const [v1] = appContainers(dep);
    // The proxy accepts connections on the host port for a container that never listens: the deploy must not count that.
    const silent = await run({ type: "deploy", deploymentId: dep, imageUrl: IMAGE.silent, portNumber: port });
    expect(silent.job.state).toBe("failed");
    expect(silent.job.error.message).toMatch(/did not answer on port/);
    expect(running(dep)).toEqual([v1]);
    expect(await waitFor(async () => ((await answer(port)) === "version-one" ? true : null), { message: "the previous version does not answer again" })).toBe(true);
  } finally {
    process.env.BLACKTREE_DEPLOY_DOCKER_NETWORK = "host";
    removeContainersWithLabel(`blacktree.deployment=${dep}`);
    execFileSync("docker", ["network", "rm", network], { stdio: "ignore" });
  }
}, 120_000);
