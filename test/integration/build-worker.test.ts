import { execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import type { PluginContext } from "../../lib/plugins/sdk";
import { createProcessTarget } from "../../plugins/targets/process";
import { nodeWorkerCommand } from "@blacktree/sdk";
import { waitFor } from "../support/wait";

/**
 * The build worker as the process target runs it: a real child process, a real git
 * repository (examples/create-local-repo.sh) and a real HTTP server for its callbacks.
 */

const ROOT = path.resolve(__dirname, "../..");
const TOKEN = "ghp_blacktreeTestToken0123456789";
const TOKEN_SECRETS = [TOKEN, Buffer.from(`x-access-token:${TOKEN}`).toString("base64")];
const CALLBACK_TOKEN = "scoped-callback-token-42";
const IMAGE_TAG = "blacktree/worker-test:1";

/**
 * A stand-in `docker` first on PATH, driven by FAKE_DOCKER: "no-engine" (info fails),
 * "builds", "fails" or "hangs" (build blocks until killed). It appends its argv to FAKE_DOCKER_ARGS.
 */
const FAKE_DOCKER = `#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_DOCKER_ARGS"
case "$1:$FAKE_DOCKER" in
  info:no-engine) echo "Cannot connect to the Docker daemon" >&2; exit 1 ;;
  info:*) echo 27.0.0; exit 0 ;;
  build:builds) echo "fake build ok"; exit 0 ;;
  build:fails) echo "boom: the Dockerfile is broken" >&2; exit 1 ;;
  build:hangs) echo "fake build hangs"; exec tail -f /dev/null ;;
esac
exit 3
`;

interface Callback {
  method: string;
  path: string;
  authorization?: string;
  body: unknown;
}

interface WorkerRun {
  code: number | null;
  stdout: string;
  stderr: string;
  result: Record<string, unknown>;
}

let dir: string;
let repo: string;
let server: http.Server;
let serverUrl: string;
let callbackBase: string;
let callbacks: Callback[];
let fakeBin: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-build-worker-"));
  repo = execFileSync(path.join(ROOT, "examples/create-local-repo.sh"), [path.join(dir, "hello")], { encoding: "utf8" }).trim();
  fakeBin = path.join(dir, "fake-bin");
  fs.mkdirSync(fakeBin);
  fs.writeFileSync(path.join(fakeBin, "docker"), FAKE_DOCKER, { mode: 0o755 });
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      callbacks.push({ method: req.method ?? "", path: req.url ?? "", authorization: req.headers.authorization, body: body ? JSON.parse(body) : null });
      if (req.url?.startsWith("/git/")) {
        res.statusCode = 404; // a git "smart HTTP" server that knows no repository
        res.end();
        return;
      }
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(req.url?.endsWith("/secrets") ? { secrets: { token: TOKEN } } : { ok: true }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  callbackBase = `${serverUrl}/api/workers/job_test/1`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  callbacks = [];
});

function dockerEngineAnswers(): boolean {
  return spawnSync("docker", ["info"], { stdio: "ignore", timeout: 5_000 }).status === 0;
}

/** Starts the worker with only the environment the process target would give it. */
function startWorker(env: Record<string, string>, tmpDir: string) {
  const [file, ...args] = nodeWorkerCommand(path.join(ROOT, "plugins/workers/build-worker"));
  return spawn(file, args, {
    cwd: tmpDir, // not the project: the worker must not depend on where it is started
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? tmpDir,
      TMPDIR: tmpDir,
      BLACKTREE_JOB_ID: "job_test",
      BLACKTREE_ATTEMPT: "1",
      BLACKTREE_REPOSITORY: repo,
      BLACKTREE_BRANCH: "main",
      BLACKTREE_DOCKERFILE_PATH: "Dockerfile",
      BLACKTREE_CONTEXT_DIR: ".",
      BLACKTREE_IMAGE_TAG: IMAGE_TAG,
      ...env,
    },
  });
}

async function runWorker(env: Record<string, string>, tmpDir = fs.mkdtempSync(path.join(dir, "tmp-"))): Promise<WorkerRun> {
  const child = startWorker(env, tmpDir);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  const last = stdout.trimEnd().split("\n").pop() ?? "";
  expect(last.startsWith("blacktree-result ")).toBe(true);
  return { code, stdout, stderr, result: JSON.parse(last.slice("blacktree-result ".length)) };
}

/** The worker's reports but its log pushes (POST …/log), in order. */
function reports(): Callback[] {
  return callbacks.filter((c) => !c.path.endsWith("/log") && !c.path.startsWith("/git/"));
}

/** The log lines the worker pushed (POST …/log), in order. */
function pushedLines(): string[] {
  return callbacks.filter((c) => c.path.endsWith("/log")).flatMap((c) => (c.body as { lines: string[] }).lines);
}

function callbackEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { BLACKTREE_CALLBACK_URL: callbackBase, BLACKTREE_CALLBACK_TOKEN: CALLBACK_TOKEN, ...extra };
}

function fakeDockerEnv(mode: string): Record<string, string> {
  return { PATH: `${fakeBin}:${process.env.PATH ?? "/usr/bin:/bin"}`, FAKE_DOCKER: mode, FAKE_DOCKER_ARGS: path.join(dir, `docker-args-${mode}`) };
}

function fakeDockerCalls(mode: string): string[] {
  const file = path.join(dir, `docker-args-${mode}`);
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trimEnd().split("\n") : [];
}

/** Leftovers in the worker's TMPDIR, apart from tsx's compile cache (present only when running from sources). */
function leftovers(tmpDir: string): string[] {
  return fs.readdirSync(tmpDir).filter((name) => !name.startsWith("tsx-"));
}

describe("reference build worker", () => {
  it("clones, checks the Dockerfile, reports started and result, keeps the token out of its log, and cleans up", async () => {
    const tmpDir = fs.mkdtempSync(path.join(dir, "tmp-"));
    const engine = dockerEngineAnswers();
    const run = await runWorker(callbackEnv({ BLACKTREE_SECRETS: "token" }), tmpDir);

    expect(run.code).toBe(0);
    const expected = engine
      ? { success: true, imageUrl: IMAGE_TAG, error: null, message: `built image ${IMAGE_TAG}` }
      : { success: true, imageUrl: null, error: null, message: "verified the build context; no Docker engine answered, so no image was built" };
    expect(run.result).toEqual(expected);
    expect(reports().map((c) => `${c.method} ${c.path}`)).toEqual([
      "POST /api/workers/job_test/1/started",
      "GET /api/workers/job_test/1/secrets",
      "POST /api/workers/job_test/1/result",
    ]);
    expect(callbacks.every((c) => c.authorization === `Bearer ${CALLBACK_TOKEN}`)).toBe(true);
    expect(reports()[2].body).toEqual(expected);
    expect(run.stdout).toContain(`🔄 cloning ${repo} (branch main)`);
    // The same lines were pushed to the orchestrator (POST /log), before the result.
    const pushed = pushedLines();
    expect(pushed).toContain(`🔄 cloning ${repo} (branch main)`);
    expect(pushed).toContain(`✅ ${expected.message}`);
    expect(callbacks.findIndex((c) => c.path.endsWith("/log"))).toBeLessThan(callbacks.findIndex((c) => c.path.endsWith("/result")));

    const output = run.stdout + run.stderr + pushed.join("\n");
    for (const secret of [...TOKEN_SECRETS, CALLBACK_TOKEN]) {
      expect(output).not.toContain(secret);
    }
    expect(leftovers(tmpDir)).toEqual([]);
    if (engine) execFileSync("docker", ["rmi", IMAGE_TAG], { stdio: "ignore" });
  });

  it("hands the token to git only as an Authorization header, and reports a failed clone with exit 1", async () => {
    const httpRepo = `${serverUrl}/git/owner/repo.git`;
    const run = await runWorker(callbackEnv({ BLACKTREE_SECRETS: "token", BLACKTREE_REPOSITORY: httpRepo }));

    expect(run.code).toBe(1);
    expect(run.result).toMatchObject({ success: false, imageUrl: null });
    expect(run.result.error).toMatch(new RegExp(`^git clone of ${httpRepo} \\(branch main\\) failed: fatal: `));
    const gitRequests = callbacks.filter((c) => c.path.startsWith("/git/owner/repo.git/"));
    expect(gitRequests.length).toBeGreaterThan(0);
    expect(gitRequests[0].authorization).toBe(`Basic ${TOKEN_SECRETS[1]}`);
    for (const secret of TOKEN_SECRETS) expect(run.stdout + run.stderr + pushedLines().join("\n")).not.toContain(secret);
    expect(run.stdout).toContain(`🔄 cloning ${httpRepo} (branch main)`);
  });

  it("fails with exit 2, not retryable, when the Dockerfile is missing", async () => {
    const tmpDir = fs.mkdtempSync(path.join(dir, "tmp-"));
    const run = await runWorker(callbackEnv({ BLACKTREE_DOCKERFILE_PATH: "docker/Dockerfile.missing" }), tmpDir);

    expect(run.code).toBe(2);
    const expected = {
      success: false,
      imageUrl: null,
      error: "Dockerfile not found at docker/Dockerfile.missing in main",
      message: "build failed",
      retryable: false,
    };
    expect(run.result).toEqual(expected);
    expect(callbacks.find((c) => c.path.endsWith("/result"))?.body).toEqual(expected);
    expect(run.stderr).toContain("❌ Dockerfile not found at docker/Dockerfile.missing in main");
    expect(leftovers(tmpDir)).toEqual([]);
  });

  it("fails with exit 1, not retryable, when the branch does not exist", async () => {
    const tmpDir = fs.mkdtempSync(path.join(dir, "tmp-"));
    const run = await runWorker({ BLACKTREE_BRANCH: "no-such-branch" }, tmpDir);

    expect(run.code).toBe(1);
    expect(run.result).toMatchObject({ success: false, imageUrl: null, retryable: false });
    expect(run.result.error).toBe(`branch "no-such-branch" not found in ${repo}`);
    expect(leftovers(tmpDir)).toEqual([]);
  });

  it("never takes a branch for a git option", async () => {
    const run = await runWorker({ BLACKTREE_BRANCH: "--upload-pack=touch /tmp/blacktree-pwned" });
    expect(run.code).toBe(1);
    expect(run.result).toMatchObject({ success: false, retryable: false });
    expect(fs.existsSync("/tmp/blacktree-pwned")).toBe(false);
  });

  it.each([
    ["a dockerFilePath", { BLACKTREE_DOCKERFILE_PATH: "../../../../etc/passwd" }, /dockerFilePath ".*" points outside the repository/],
    ["a contextDir", { BLACKTREE_CONTEXT_DIR: "../" }, /contextDir "\.\.\/" points outside the repository/],
    ["an absolute dockerFilePath", { BLACKTREE_DOCKERFILE_PATH: "/etc/passwd" }, /points outside the repository/],
  ])("refuses %s that escapes the clone (exit 2)", async (_what, env, error) => {
    const run = await runWorker(env);
    expect(run.code).toBe(2);
    expect(run.result).toMatchObject({ success: false, retryable: false, error: expect.stringMatching(error) });
  });

  it("refuses a Dockerfile that is a symlink out of the clone", async () => {
    const linked = path.join(dir, "linked");
    execFileSync(path.join(ROOT, "examples/create-local-repo.sh"), [linked]);
    fs.symlinkSync("/etc/passwd", path.join(linked, "Dockerfile.link"));
    execFileSync("git", ["-C", linked, "add", "Dockerfile.link"]);
    execFileSync("git", ["-C", linked, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "link out"]);

    const run = await runWorker({ BLACKTREE_REPOSITORY: linked, BLACKTREE_DOCKERFILE_PATH: "Dockerfile.link" });
    expect(run.code).toBe(2);
    expect(run.result.error).toMatch(/points outside the repository \(through a symlink\)/);
  });

  it("builds the image when an engine answers, passing only absolute paths to docker", async () => {
    const run = await runWorker(fakeDockerEnv("builds"));
    expect(run.code).toBe(0);
    expect(run.result).toEqual({ success: true, imageUrl: IMAGE_TAG, error: null, message: `built image ${IMAGE_TAG}` });
    const build = fakeDockerCalls("builds").find((call) => call.startsWith("build "));
    expect(build).toMatch(new RegExp(`^build -f /\\S+/repo/Dockerfile -t ${IMAGE_TAG} /\\S+/repo$`));
  });

  it("reports success without an image when no engine answers", async () => {
    const run = await runWorker(fakeDockerEnv("no-engine"));
    expect(run.code).toBe(0);
    expect(run.result).toMatchObject({ success: true, imageUrl: null });
    expect(fakeDockerCalls("no-engine").some((call) => call.startsWith("build"))).toBe(false);
  });

  it("fails with exit 1 and docker's last words when the build fails", async () => {
    const run = await runWorker(fakeDockerEnv("fails"));
    expect(run.code).toBe(1);
    expect(run.result).toMatchObject({ success: false, imageUrl: null, error: `docker build of ${IMAGE_TAG} failed: boom: the Dockerfile is broken` });
  });

  it("on SIGTERM stops the build, removes the clone and exits 143 without a result", async () => {
    const tmpDir = fs.mkdtempSync(path.join(dir, "tmp-"));
    const child = startWorker(fakeDockerEnv("hangs"), tmpDir);
    let stdout = "";
    const building = new Promise<void>((resolve) =>
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
        if (stdout.includes("fake build hangs")) resolve();
      }),
    );
    await building;
    expect(leftovers(tmpDir)).toHaveLength(1); // the clone, while the build runs

    child.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    expect(code).toBe(143);
    expect(stdout).not.toContain("blacktree-result");
    expect(leftovers(tmpDir)).toEqual([]);
  });

  it("runs under the process target, with nothing but the environment the target gives it", async () => {
    const tmpDir = fs.mkdtempSync(path.join(dir, "tmp-"));
    const quiet = () => undefined;
    const ctx: PluginContext = { logger: { info: quiet, warn: quiet, error: quiet, debug: quiet }, dataDir: tmpDir, mode: "development", policy: {} };
    const target = createProcessTarget();
    await target.init({ stateDir: path.join(dir, "process-state") }, ctx);
    try {
      const handle = await target.launch(
        {
          jobId: "job_e2e",
          attempt: 1,
          key: "job_e2e:1",
          labels: {},
          workload: {
            command: nodeWorkerCommand(path.join(ROOT, "plugins/workers/build-worker")),
            env: { ...callbackEnv(), BLACKTREE_REPOSITORY: repo, BLACKTREE_BRANCH: "main", BLACKTREE_IMAGE_TAG: IMAGE_TAG, TMPDIR: tmpDir, ...fakeDockerEnv("builds") },
          },
        },
        ctx,
      );
      const status = await waitFor(async () => {
        const [s] = await target.inspect([handle], ctx);
        return s.state === "exited" ? s : null;
      }, { timeout: 30_000, message: "the worker ended" });
      expect(status).toEqual({ key: "job_e2e:1", state: "exited", exitCode: 0 });

      const lines: string[] = [];
      for await (const line of target.logs!(handle, ctx)) lines.push(line);
      expect(lines).toContain(`🔄 cloning ${repo} (branch main)`);
      expect(JSON.parse(lines[lines.length - 1].slice("blacktree-result ".length))).toMatchObject({ success: true, imageUrl: IMAGE_TAG });
      expect(reports().map((c) => c.path)).toEqual(["/api/workers/job_test/1/started", "/api/workers/job_test/1/result"]);
      expect(pushedLines()).toContain(`🔄 cloning ${repo} (branch main)`);
      expect(leftovers(tmpDir).filter((name) => name.startsWith("blacktree-build-"))).toEqual([]);
    } finally {
      await target.close?.();
    }
  });
});
