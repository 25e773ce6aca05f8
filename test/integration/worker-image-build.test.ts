import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { containersWithLabel, ensureTestImage, removeContainersWithLabel } from "../support/docker";
import { startNode, tempDir, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";
import { bareRepository, ensureWorkerImage, pushBaseImage, startRegistry, type LocalRegistry } from "../support/worker-image";

/**
 * A `build` on the docker target runs the build worker INSIDE the worker image
 * (deploy/worker-image): it clones a local bare repository (bind-mounted read-only), builds
 * with buildah — no Docker socket in the container, not privileged, no added capability —
 * and pushes to a real registry (Debian's docker-registry) whose HTTP API then serves the
 * manifest with the digest in `imageUrl`. The engine here has no bridge, so the container
 * shares the host network (`network: "host"`) to reach the registry and the gateway.
 */
const labelPrefix = `bt-h11a-${process.pid}`;
const REGISTRY_USER = "bt-h11a-pusher";
const REGISTRY_PASSWORD = "bt-h11a-registry-password-5f3a9c";
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];

let node: TestNode;
let registry: LocalRegistry;
let dir: string;
let repo: string;
let workerImage: string;

beforeAll(async () => {
  ensureTestImage();
  workerImage = ensureWorkerImage();
  registry = await startRegistry();
  const base = pushBaseImage(registry);
  dir = tempDir("bt-h11a-build-");
  repo = bareRepository(dir, {
    main: `FROM ${base}\nCOPY hello.txt /hello.txt\nRUN echo built-inside-the-worker > /built.txt && cat /hello.txt\nCMD ["cat", "/built.txt"]\n`,
    broken: `FROM ${base}\nRUN echo this step fails && exit 7\n`,
  });
  node = await startNode({
    configure: (c) => {
      c.plugins.push({
        use: "./plugins/targets/docker",
        config: {
          network: "host",
          stopGraceMs: 2_000,
          labelPrefix,
          workerImage,
          // The one setting buildah needs here for RUN steps: an unprivileged user namespace (see the README).
          workerSecurityOpt: ["seccomp=unconfined"],
          workerBinds: [`${dir}:${dir}:ro`],
          registry: { url: registry.host, repositoryPrefix: "bt-h11a/", insecure: true, username: REGISTRY_USER, password: REGISTRY_PASSWORD },
        },
      });
      c.routing.byType.build = "docker";
    },
  });
}, 600_000);

afterAll(async () => {
  await node?.stop();
  removeContainersWithLabel(`${labelPrefix}.key`);
  await registry?.stop();
});

async function finished(id: string): Promise<any> {
  return waitFor(
    async () => {
      const r = await node.http("GET", `/api/jobs/${id}`);
      return FINAL.includes(r.body.job.state) ? r.body : null;
    },
    { timeout: 240_000, interval: 250, message: `job ${id} ended` },
  );
}

const logsOf = async (id: string): Promise<string[]> => ((await node.http("GET", `/api/jobs/${id}/logs`)).body.attempts ?? []).flatMap((a: any) => a.lines ?? []);

test("a build runs inside the worker container, builds with buildah and pushes: the registry serves the digest in imageUrl", async () => {
  const res = await node.http("POST", "/api/jobs", { type: "build", deploymentId: "bt-h11a-app", repository: repo, branch: "main" });
  expect(res.status).toBe(202);
  const id = res.body.job.id;

  // The builder's lines reach the job's log while the job still runs (streamed, not at the end).
  const streamed = await waitFor(
    async () => {
      const [job, lines] = await Promise.all([node.http("GET", `/api/jobs/${id}`), logsOf(id)]);
      if (FINAL.includes(job.body.job.state)) throw new Error(`job ended (${job.body.job.state}) before a buildah line was seen in its log: ${lines.join("\n")}`);
      return job.body.job.state === "running" && lines.some((l) => l.includes("buildah: STEP")) ? lines : null;
    },
    { timeout: 180_000, interval: 200, message: "buildah output in the log of the running job" },
  );
  expect(streamed.length).toBeGreaterThan(0);

  const done = await finished(id);
  expect(done.job).toMatchObject({ state: "succeeded", target: "docker" });
  expect(done.attempts).toHaveLength(1);
  const imageUrl: string = done.job.result.imageUrl;
  const match = /^(127\.0\.0\.1:\d+)\/(bt-h11a\/blacktree\/bt-h11a-app):([a-z0-9._-]+)@(sha256:[a-f0-9]{64})$/.exec(imageUrl);
  expect(match).not.toBeNull();
  const [, host, repository, tag, digest] = match!;
  expect(host).toBe(registry.host);
  expect(tag).toMatch(/-1$/); // one tag per attempt
  expect(await registry.manifestDigest(repository, tag)).toBe(digest);

  // It ran in the worker image, not on the host: the container of the attempt ran blacktree-worker build-worker.
  const [container] = containersWithLabel(`${labelPrefix}.job=${id}`);
  const inspect = JSON.parse(execFileSync("docker", ["inspect", container], { encoding: "utf8" }))[0];
  expect(inspect.Config.Cmd).toEqual(["blacktree-worker", "build-worker"]);
  expect(inspect.HostConfig.Privileged).toBe(false);
  expect(inspect.HostConfig.CapAdd ?? []).toEqual([]);
  expect(JSON.stringify(inspect.Mounts)).not.toContain("docker.sock");
  // The registry credentials came through the secrets fetch only: never in the container's env or the job's log.
  expect(JSON.stringify(inspect.Config.Env)).not.toContain(REGISTRY_PASSWORD);
  expect(inspect.Config.Env).toEqual(expect.arrayContaining([`BLACKTREE_REGISTRY=${registry.host}`, "BLACKTREE_SECRETS=registryUsername,registryPassword"]));
  expect(done.history).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "attempt.secrets_fetched" })]));
  const lines = await logsOf(id);
  expect(lines.join("\n")).toContain("buildah: STEP 3/4: RUN");
  expect(lines.join("\n")).not.toContain(REGISTRY_PASSWORD);
  for (const file of fs.readdirSync(node.dataDir, { recursive: true }) as string[]) {
    const p = path.join(node.dataDir, file);
    if (fs.statSync(p).isFile()) expect(fs.readFileSync(p).includes(REGISTRY_PASSWORD)).toBe(false);
  }
}, 300_000);

test("a broken Dockerfile ends failed after one attempt, with the builder's error in the log", async () => {
  const res = await node.http("POST", "/api/jobs", { type: "build", deploymentId: "bt-h11a-broken", repository: repo, branch: "broken" });
  expect(res.status).toBe(202);
  const done = await finished(res.body.job.id);
  expect(done.job.state).toBe("failed");
  expect(done.attempts).toHaveLength(1);
  expect(done.job.error?.message ?? JSON.stringify(done.job)).toContain("buildah build");
  const lines = (await logsOf(res.body.job.id)).join("\n");
  expect(lines).toContain("this step fails");
  expect(lines).toMatch(/buildah: .*(error building at STEP|exit status 7)/i);
}, 300_000);

test("under Docker's default confinement (like Fargate: no user namespaces) the build worker fails at once, not retryable, saying what to change", () => {
  // The worker image run by hand with Docker's defaults (no workerSecurityOpt), no orchestrator: it prints its result last.
  const run = spawnSync(
    "docker",
    ["run", "--rm", "--name", `${labelPrefix}-confined`, "--network", "none", "-v", `${dir}:${dir}:ro`, "-e", `BLACKTREE_REPOSITORY=${repo}`, "-e", "BLACKTREE_IMAGE_TAG=blacktree/confined:1", workerImage, "blacktree-worker", "build-worker"],
    { encoding: "utf8", timeout: 120_000 },
  );
  expect(run.status).toBe(1);
  const last = run.stdout.trim().split("\n").at(-1) ?? "";
  expect(last.startsWith("blacktree-result ")).toBe(true);
  const result = JSON.parse(last.slice("blacktree-result ".length));
  expect(result).toMatchObject({ success: false, retryable: false });
  expect(result.error).toContain("cannot create a user namespace");
  expect(result.error).toContain("seccomp=unconfined");
}, 180_000);
