import type { LaunchRequest } from "../../lib/sdk";
import { createDockerTarget } from "../../plugins/targets/docker";
import { ensureTestImage, removeContainersWithLabel, TEST_IMAGE } from "../support/docker";
import { tempDir } from "../support/orchestrator";
import { quietContext } from "../support/quiet-context";
import { waitFor } from "../support/wait";

/** `engineSocketFor`: only the named job types' worker containers get the engine's socket (the deploy worker's Docker deployer). */
const labelPrefix = `bt-h11b-sock${process.pid}`;
const ctx = quietContext(tempDir("bt-h11b-docker-socket-"));
const targets: ReturnType<typeof createDockerTarget>[] = [];

beforeAll(() => ensureTestImage(), 120_000);
afterAll(async () => {
  removeContainersWithLabel(`${labelPrefix}.key`);
  for (const t of targets) await t.close();
});

function request(key: string, type: string): LaunchRequest {
  const [jobId, attempt] = key.split(":");
  return {
    jobId,
    attempt: Number(attempt),
    key,
    // Exits 0 when it sees the socket, 3 when it does not.
    workload: { image: TEST_IMAGE, command: ["sh", "-c", "test -S /var/run/docker.sock || exit 3"], env: {} },
    labels: { "blacktree.job": jobId, "blacktree.attempt": attempt, "blacktree.deployment": "bt-h11b-sock", "blacktree.type": type },
  };
}

async function exitCodeOf(target: ReturnType<typeof createDockerTarget>, req: LaunchRequest): Promise<number> {
  await target.launch(req, ctx);
  const status = await waitFor(async () => {
    const [s] = await target.inspect([{ key: req.key } as never], ctx);
    return s.state === "exited" ? s : null;
  }, { timeout: 30_000, message: `${req.key} never exited` });
  return (status as { exitCode: number }).exitCode;
}

test("the engine socket is mounted into the named job types' workers only, and into none by default", async () => {
  const target = createDockerTarget();
  await target.init({ labelPrefix, engineSocketFor: ["deploy", "stop"] }, ctx);
  targets.push(target);
  expect(await exitCodeOf(target, request("job_sdeploy:1", "deploy"))).toBe(0);
  expect(await exitCodeOf(target, request("job_sstop:1", "stop"))).toBe(0);
  expect(await exitCodeOf(target, request("job_sbuild:1", "build"))).toBe(3);

  const plain = createDockerTarget();
  await plain.init({ labelPrefix }, ctx);
  targets.push(plain);
  expect(await exitCodeOf(plain, request("job_splain:1", "deploy"))).toBe(3);
}, 120_000);

test("engineSocketFor with a TCP engine and no socket is refused at init", async () => {
  const target = createDockerTarget();
  await expect(target.init({ labelPrefix, host: "tcp://127.0.0.1:1", engineSocketFor: ["deploy"] }, ctx)).rejects.toThrow(/needs socketPath/);
});
