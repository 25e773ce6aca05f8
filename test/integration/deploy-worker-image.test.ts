import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { containersWithLabel, ensureTestImage, removeContainersWithLabel } from "../support/docker";
import { freePort, startNode, tempDir, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";
import { TEST_IMAGE } from "../support/docker";
import { bareRepository, ensureWorkerImage } from "../support/worker-image";

/**
 * The whole flow on the docker target, every worker in the worker image: a `build` with
 * `autoDeploy` builds with buildah and pushes to a local registry; its follow-up `deploy`
 * runs the deploy worker in a container that has the engine's socket (`engineSocketFor`),
 * which pulls the pushed image by digest and runs it as the deployment's container on
 * network `host`, where it answers on `portNumber`. A second build replaces it; a stop removes it.
 * The registry wants a password (htpasswd): the build pushes and the deploy pulls with the
 * target's credentials, which reach each worker through its one-time secrets fetch only.
 */
const RUN = randomBytes(3).toString("hex");
const labelPrefix = `bt-h11b-wi${RUN}`;
const DEPLOYMENT = `bt-h11b-wi-${RUN}`;
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];
let node: TestNode;
const REGISTRY_USER = "bt-h11b-deployer";
const REGISTRY_PASSWORD = `bt-h11b-registry-${randomBytes(8).toString("hex")}`;
let registry: { host: string; stop(): Promise<void> };
let repo: string;
const pulled = new Set<string>();

beforeAll(async () => {
  ensureTestImage();
  const workerImage = ensureWorkerImage();
  registry = await startAuthenticatedRegistry();
  const base = `${registry.host}/bt-h11b/busybox:1`;
  execFileSync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", `${REGISTRY_USER}:${REGISTRY_PASSWORD}`, `docker-daemon:${TEST_IMAGE}`, `docker://${base}`], { stdio: "pipe", timeout: 120_000 });
  const dir = tempDir("bt-h11b-wi-");
  const app = (text: string) => `FROM ${base}\nRUN mkdir -p /www && echo ${text} > /www/index.html\nCMD ["sh", "-c", "exec httpd -f -p \\"$PORT\\" -h /www"]\n`;
  repo = bareRepository(dir, { main: app("first-build"), second: app("second-build") });
  Object.assign(process.env, { BLACKTREE_DEPLOYER: "docker", BLACKTREE_DEPLOY_DOCKER_NETWORK: "host", BLACKTREE_DEPLOY_TIMEOUT_MS: "30000", BLACKTREE_DEPLOY_POLL_MS: "200" });
  node = await startNode({
    configure: (c) => {
      c.plugins.push({
        use: "./plugins/targets/docker",
        config: {
          network: "host",
          stopGraceMs: 2_000,
          labelPrefix,
          workerImage,
          workerSecurityOpt: ["seccomp=unconfined"],
          workerBinds: [`${dir}:${dir}:ro`],
          registry: { url: registry.host, repositoryPrefix: "bt-h11b/", insecure: true, username: REGISTRY_USER, password: REGISTRY_PASSWORD },
          engineSocketFor: ["deploy", "stop"],
        },
      });
      for (const type of ["build", "deploy", "stop"]) c.routing.byType[type] = "docker";
    },
  });
}, 600_000);

afterAll(async () => {
  for (const c of containersWithLabel(`blacktree.deployment=${DEPLOYMENT}`)) {
    try {
      pulled.add(JSON.parse(execFileSync("docker", ["inspect", c], { encoding: "utf8" }))[0].Image);
    } catch {
      // already gone
    }
  }
  removeContainersWithLabel(`blacktree.deployment=${DEPLOYMENT}`);
  removeContainersWithLabel(`${labelPrefix}.key`);
  for (const image of pulled) execFileSync("docker", ["image", "rm", "-f", image], { stdio: "ignore" });
  await node?.stop();
  await registry?.stop();
});

/** Debian's docker-registry on a free port with htpasswd auth (bcrypt, from apache2-utils' htpasswd), plain HTTP. */
async function startAuthenticatedRegistry() {
  const dir = tempDir("bt-h11b-registry-");
  const port = await freePort();
  fs.writeFileSync(path.join(dir, "htpasswd"), execFileSync("htpasswd", ["-Bbn", REGISTRY_USER, REGISTRY_PASSWORD], { encoding: "utf8" }));
  const config = path.join(dir, "config.yml");
  fs.writeFileSync(config, `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nauth:\n  htpasswd:\n    realm: bt-h11b\n    path: ${dir}/htpasswd\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const proc = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "ignore", fs.openSync(path.join(dir, "registry.log"), "a")] });
  const host = `127.0.0.1:${port}`;
  await waitFor(() => fetch(`http://${host}/v2/`).then((r) => r.status === 401, () => false), { timeout: 30_000, message: `docker-registry on ${host}` });
  return {
    host,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((resolve) => proc.once("exit", resolve));
        proc.kill("SIGKILL");
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function finished(id: string): Promise<any> {
  return waitFor(async () => {
    const r = await node.http("GET", `/api/jobs/${id}`);
    return FINAL.includes(r.body.job.state) ? r.body : null;
  }, { timeout: 240_000, interval: 250, message: `job ${id} ended` });
}

async function answer(port: number): Promise<string | null> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) })).text()).trim();
  } catch {
    return null;
  }
}

const appContainers = () => containersWithLabel(`blacktree.deployment=${DEPLOYMENT}`).filter((c) => inspect(c).Config.Labels["blacktree.role"] === "app");
const inspect = (id: string) => JSON.parse(execFileSync("docker", ["inspect", id], { encoding: "utf8" }))[0];

async function buildAndDeploy(branch: string, port: number) {
  const res = await node.http("POST", "/api/jobs", { deploymentId: DEPLOYMENT, repository: repo, branch, autoDeploy: true, portNumber: port });
  expect(res.status).toBe(202);
  const build = await finished(res.body.job.id);
  expect(build.job).toMatchObject({ state: "succeeded", target: "docker" });
  const imageUrl: string = build.job.result.imageUrl;
  expect(imageUrl).toMatch(new RegExp(`^${registry.host.replace(/\./g, "\\.")}/bt-h11b/blacktree/${DEPLOYMENT}:[a-z0-9._-]+@sha256:[a-f0-9]{64}$`));
  const followUp = await waitFor(async () => (await node.http("GET", `/api/jobs/${build.job.id}`)).body.history.find((e: any) => e.kind === "job.follow_up"), { message: "no follow-up recorded" });
  const deploy = await finished(followUp.data.jobId);
  const logs = ((await node.http("GET", `/api/jobs/${deploy.job.id}/logs`)).body.attempts ?? []).flatMap((a: any) => a.lines ?? []);
  expect({ state: deploy.job.state, error: deploy.job.error, logs }).toEqual(expect.objectContaining({ state: "succeeded" }));
  expect(deploy.job).toMatchObject({ target: "docker", params: expect.objectContaining({ imageUrl }) });
  // The deploy worker ran in the worker image, with the engine's socket; the build worker had none.
  const [worker] = containersWithLabel(`${labelPrefix}.job=${deploy.job.id}`);
  const w = inspect(worker);
  expect(w.Config.Cmd).toEqual(["blacktree-worker", "deploy-worker"]);
  expect(w.HostConfig.Binds).toContain("/var/run/docker.sock:/var/run/docker.sock");
  const [builder] = containersWithLabel(`${labelPrefix}.job=${build.job.id}`);
  expect(JSON.stringify(inspect(builder).Mounts)).not.toContain("docker.sock");
  // It pulled with the registry's credentials, which are in no env, log or launch parameter.
  expect(logs.join("\n")).toContain(`pulling ${imageUrl} with the registry's credentials`);
  for (const text of [JSON.stringify(w.Config.Env), JSON.stringify(w.Config.Cmd), logs.join("\n"), JSON.stringify(deploy)]) expect(text).not.toContain(REGISTRY_PASSWORD);
  return { build, deploy, imageUrl };
}

test("build → auto-deploy in the worker image: the pushed image answers on its port; a second build replaces it; stop removes it", async () => {
  const port = await freePort();
  const first = await buildAndDeploy("main", port);
  expect(await answer(port)).toBe("first-build");
  const [v1] = appContainers();
  expect(appContainers()).toHaveLength(1);
  expect(inspect(v1).Config.Image).toBe(first.imageUrl); // run by the digest the push reported
  pulled.add(inspect(v1).Image);

  const second = await buildAndDeploy("second", port);
  expect(await answer(port)).toBe("second-build");
  const [v2] = appContainers();
  expect(appContainers()).toEqual([v2]);
  expect(v2).not.toBe(v1);
  expect(inspect(v2).Config.Image).toBe(second.imageUrl);
  pulled.add(inspect(v2).Image);

  const stop = await node.http("POST", "/api/jobs", { type: "stop", deploymentId: DEPLOYMENT });
  expect((await finished(stop.body.job.id)).job).toMatchObject({ state: "succeeded", target: "docker" });
  expect(appContainers()).toEqual([]);
  expect(await answer(port)).toBeNull();
}, 600_000);
