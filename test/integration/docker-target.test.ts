import { execFileSync } from "node:child_process";
import type { LaunchRequest, Workload } from "../../lib/sdk";
import { createDockerTarget, type DockerTargetConfig } from "../../plugins/targets/docker";
import { containersWithLabel, ensureTestImage, removeContainersWithLabel, TEST_IMAGE } from "../support/docker";
import { tempDir } from "../support/orchestrator";
import { quietContext } from "../support/quiet-context";
import { waitFor } from "../support/wait";

/** What the conformance suite does not cover: labels, limits, adoption by a new instance, retention, engine errors, log tails. */
const labelPrefix = `btdock${process.pid}`;
const ctx = quietContext(tempDir("blacktree-docker-target-"));
const targets: ReturnType<typeof createDockerTarget>[] = [];

async function newTarget(config: DockerTargetConfig = {}) {
  const target = createDockerTarget();
  await target.init({ labelPrefix, stopGraceMs: 1_000, ...config }, ctx);
  targets.push(target);
  return target;
}

function request(key: string, workload: Partial<Workload>): LaunchRequest {
  const [jobId, attempt] = key.split(":");
  return {
    jobId,
    attempt: Number(attempt),
    key,
    workload: { image: TEST_IMAGE, env: {}, ...workload },
    labels: { "blacktree.job": jobId, "blacktree.attempt": attempt, "blacktree.deployment": "dep-1", "blacktree.type": "script" },
  };
}

const inspectContainer = (id: string) => JSON.parse(execFileSync("docker", ["inspect", id], { encoding: "utf8" }))[0];

beforeAll(() => ensureTestImage(), 120_000);
afterAll(async () => {
  removeContainersWithLabel(`${labelPrefix}.key`);
  for (const t of targets) await t.close();
});

describe("docker target", () => {
  test("a container is labelled from the request, gets the workload's env and limits, network none; a new instance adopts it", async () => {
    const target = await newTarget();
    const handle = await target.launch(request("job_lab:1", { command: ["sh", "-c", "echo $GREETING; echo on-stderr >&2; sleep 300"], env: { GREETING: "hello" }, cpu: 0.5, memoryMb: 64 }), ctx);
    const info = inspectContainer(handle.id);
    expect(info.Config.Labels).toMatchObject({ [`${labelPrefix}.job`]: "job_lab", [`${labelPrefix}.attempt`]: "1", [`${labelPrefix}.deployment`]: "dep-1", [`${labelPrefix}.key`]: "job_lab:1" });
    expect(info.Config.Env).toContain("GREETING=hello");
    expect(info.HostConfig.NetworkMode).toBe("none");
    expect(info.HostConfig.NanoCpus).toBe(500_000_000);
    expect(info.HostConfig.Memory).toBe(64 * 1024 * 1024);

    // An orchestrator restarted: a fresh instance knows the container from the key alone.
    const restarted = await newTarget();
    await waitFor(async () => (await restarted.inspect([{ key: "job_lab:1" } as never], ctx))[0].state === "running", { timeout: 30_000 });
    expect(await restarted.list(ctx)).toContain("job_lab:1");
    expect(await restarted.launch(request("job_lab:1", { command: ["sh", "-c", "exit 9"] }), ctx)).toEqual(handle);
    expect(containersWithLabel(`${labelPrefix}.key=job_lab:1`)).toHaveLength(1);
    let lines: string[] = [];
    await waitFor(async () => (lines = await logs(restarted, "job_lab:1")) && ["hello", "on-stderr"].every((l) => lines.includes(l)), { timeout: 30_000 });
    await restarted.stop({ key: "job_lab:1" } as never, "test done", ctx);
  }, 90_000);

  test("removes a finished container once its retention has passed; then the key is lost", async () => {
    const target = await newTarget({ retentionMs: 1_000 });
    const handle = await target.launch(request("job_ret:1", { command: ["sh", "-c", "exit 4"] }), ctx);
    expect(await waitFor(async () => {
      const [s] = await target.inspect([handle], ctx);
      return s.state === "exited" ? s : null;
    }, { timeout: 30_000 })).toMatchObject({ exitCode: 4 });
    // Housekeeping runs from inspect/list calls, as the lifecycle makes them.
    await waitFor(async () => {
      await target.list(ctx);
      return containersWithLabel(`${labelPrefix}.key=job_ret:1`).length === 0;
    }, { timeout: 30_000, interval: 250, message: "finished container removed after retention" });
    expect((await target.inspect([handle], ctx))[0]).toMatchObject({ state: "lost" });
  }, 90_000);

  test("an unreachable engine fails launches as retryable, and inspect/list with a coded retryable error", async () => {
    const target = await newTarget({ socketPath: "/nonexistent/docker.sock" });
    await expect(target.launch(request("job_down:1", { command: ["true"] }), ctx)).rejects.toMatchObject({ type: "LAUNCH_FAILED", retryable: true });
    await expect(target.inspect([{ key: "job_down:1" } as never], ctx)).rejects.toMatchObject({ type: expect.any(String), retryable: true });
    await expect(target.list(ctx)).rejects.toMatchObject({ retryable: true });
    const noImage = await newTarget();
    await expect(noImage.launch({ ...request("job_noimg:1", {}), workload: { env: {} } }, ctx)).rejects.toMatchObject({ type: "LAUNCH_FAILED", retryable: false });
  });

  test("logs are demultiplexed whole lines from the last logMaxBytes", async () => {
    const target = await newTarget({ logMaxBytes: 1024 });
    const handle = await target.launch(request("job_log:1", { command: ["sh", "-c", "i=0; while [ $i -lt 500 ]; do echo line $i; i=$((i+1)); done"] }), ctx);
    await waitFor(async () => (await target.inspect([handle], ctx))[0].state === "exited", { timeout: 30_000 });
    const lines = await logs(target, "job_log:1");
    expect(Buffer.byteLength(lines.join("\n"))).toBeLessThanOrEqual(1024);
    expect(lines.length).toBeGreaterThan(20);
    for (const line of lines) expect(line).toMatch(/^line \d+$/);
    expect(lines).toContain("line 499");
  }, 60_000);
});

async function logs(target: ReturnType<typeof createDockerTarget>, key: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of target.logs({ key } as never)) lines.push(line);
  return lines;
}
