import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { freePort, ROOT, tempDir } from "./orchestrator";
import { TEST_IMAGE } from "./docker";
import { waitFor } from "./wait";

/** The worker image the tests run (deploy/worker-image/build.sh; .ci/run builds it before the suite). */
export const WORKER_IMAGE = process.env.BT_WORKER_IMAGE ?? "local/blacktree-worker:1";

/** Builds the worker image when its inputs changed (idempotent, cached rootfs: seconds when nothing changed). */
export function ensureWorkerImage(): string {
  try {
    execFileSync("bash", [path.join(ROOT, "deploy/worker-image/build.sh"), WORKER_IMAGE], { stdio: "pipe", timeout: 15 * 60_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim();
    throw new Error(`the worker image tests need ${WORKER_IMAGE}: run (as root) deploy/worker-image/build.sh ${WORKER_IMAGE}. ${stderr}`);
  }
  return WORKER_IMAGE;
}

export interface LocalRegistry {
  /** `127.0.0.1:<port>` */
  host: string;
  /** The manifest's digest as the registry serves it (`Docker-Content-Digest`), or null when it has no such tag. */
  manifestDigest(repository: string, tag: string): Promise<string | null>;
  stop(): Promise<void>;
}

/**
 * Debian's docker-registry on 127.0.0.1 and a free port, with its own config file and a
 * temp storage dir (removed by stop). Plain HTTP, no auth: pushes use `insecure: true`.
 */
export async function startRegistry(): Promise<LocalRegistry> {
  const dir = tempDir("bt-h11a-registry-");
  const port = await freePort();
  const config = path.join(dir, "config.yml");
  fs.writeFileSync(config, `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const proc: ChildProcess = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "ignore", fs.openSync(path.join(dir, "registry.log"), "a")] });
  const host = `127.0.0.1:${port}`;
  await waitFor(() => fetch(`http://${host}/v2/`).then((r) => r.ok, () => false), { timeout: 30_000, message: `docker-registry on ${host} (log: ${dir}/registry.log)` });
  return {
    host,
    async manifestDigest(repository, tag) {
      const res = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
        headers: { accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" },
      });
      await res.arrayBuffer();
      return res.ok ? res.headers.get("docker-content-digest") : null;
    },
    async stop() {
      // Its storage is thrown away: no graceful drain needed.
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((resolve) => proc.once("exit", resolve));
        proc.kill("SIGKILL");
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Copies the offline busybox image into the registry as a base image a Dockerfile can name in FROM (no registry pull from outside). */
export function pushBaseImage(registry: LocalRegistry, repository = "base/busybox:1"): string {
  execFileSync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `docker-daemon:${TEST_IMAGE}`, `docker://${registry.host}/${repository}`], { stdio: "pipe", timeout: 120_000 });
  return `${registry.host}/${repository}`;
}

/**
 * A bare git repository with one branch per Dockerfile (`branches`: name → Dockerfile
 * text), under `root` (bind-mounted read-only into the worker container at the same path).
 */
export function bareRepository(root: string, branches: Record<string, string>): string {
  const work = path.join(root, "work");
  const bare = path.join(root, "repos", "app.git");
  const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, stdio: "pipe", env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com" } });
  fs.mkdirSync(work, { recursive: true });
  git(work, "init", "-q", "-b", "main");
  fs.writeFileSync(path.join(work, "hello.txt"), "hello from the repository\n");
  git(work, "add", ".");
  git(work, "commit", "-q", "-m", "start");
  for (const [branch, dockerfile] of Object.entries(branches)) {
    git(work, "checkout", "-q", "-B", branch, "main");
    fs.writeFileSync(path.join(work, "Dockerfile"), dockerfile);
    git(work, "add", ".");
    git(work, "commit", "-q", "-m", `Dockerfile for ${branch}`);
  }
  fs.mkdirSync(path.dirname(bare), { recursive: true });
  git(root, "clone", "-q", "--bare", work, bare);
  // The container runs git as root on files owned by this user: tell it they are safe.
  execFileSync("chmod", ["-R", "a+rX", root]);
  return bare;
}
