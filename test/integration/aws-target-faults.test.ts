import { createEc2Target } from "../../plugins/targets/ec2";
import { createFargateTarget } from "../../plugins/targets/fargate";
import type { LaunchRequest, Workload } from "../../lib/sdk";
import { startAwsEmulator, useDummyAwsCredentials, type AwsEmulator } from "../support/aws-emulator";
import { tempDir } from "../support/orchestrator";
import { quietContext } from "../support/quiet-context";
import { waitFor } from "../support/wait";

/** The AWS targets against the failures AWS really produces, through the real SDK clients and the local emulator. */
let emu: AwsEmulator;
const ctx = quietContext(tempDir("blacktree-aws-faults-"));
const fargate = createFargateTarget();
const ec2 = createEc2Target();
let n = 0;

const request = (workload: Workload, key = `job_faults${process.pid}x${++n}:1`): LaunchRequest => ({
  jobId: key.split(":")[0],
  attempt: 1,
  key,
  workload,
  labels: { "blacktree.job": key.split(":")[0], "blacktree.attempt": "1", "blacktree.deployment": "dep_1", "blacktree.type": "build" },
});
const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as { type: string; retryable: boolean; message: string });

beforeAll(async () => {
  useDummyAwsCredentials();
  emu = await startAwsEmulator();
  await fargate.init({ cluster: "faults", taskDefinition: "worker:1", containerName: "worker", subnets: ["subnet-1"], endpoint: emu.endpoint, runTaskPerSecond: 100, pollMs: 50, maxAttempts: 2 }, ctx);
  await ec2.init({ imageId: "ami-1", instanceType: "t3.small", endpoint: emu.endpoint, runInstancesPerSecond: 100, maxAttempts: 2 }, ctx);
});
afterAll(async () => {
  await fargate.close();
  await ec2.close();
  await emu?.stop();
});
afterEach(() => emu.clearFaults());

describe("fargate", () => {
  test("RunTask answering 200 with a capacity failure is a retryable LAUNCH_FAILED", async () => {
    emu.inject({ action: "RunTask", kind: "capacity" });
    const err = await failure(fargate.launch(request({ env: {} }), ctx));
    expect(err).toEqual(expect.objectContaining({ type: "LAUNCH_FAILED", retryable: true, message: expect.stringMatching(/Capacity is unavailable/) }));
  });

  test("throttled RunTask calls are absorbed: the launch succeeds late, with one task", async () => {
    emu.inject({ action: "RunTask", kind: "throttle", times: 4 }); // more than the SDK's own 2 attempts: our patient loop takes over
    const req = request({ env: {} });
    const handle = await fargate.launch(req, ctx);
    expect(handle.taskArn).toMatch(/^arn:aws:ecs:/);
    expect(emu.ecs.tasksTagged("blacktree.key", req.key)).toHaveLength(1);
  });

  test("succeed, then drop the connection: the retry with the same clientToken gets the same task", async () => {
    const before = emu.count("RunTask");
    emu.inject({ action: "RunTask", kind: "drop" });
    const req = request({ env: {} });
    const handle = await fargate.launch(req, ctx);
    expect(emu.count("RunTask") - before).toBe(2);
    expect(emu.ecs.tasksTagged("blacktree.key", req.key)).toEqual([handle.taskArn]);
  });

  test("a key over 64 characters is sent as its SHA-256: deterministic, still one task", async () => {
    const key = `job_${"k".repeat(80)}:1`;
    const [a, b] = [await fargate.launch(request({ env: {} }, key), ctx), await fargate.launch(request({ env: {} }, key), ctx)];
    expect(a).toEqual(b);
    expect(emu.ecs.tasksTagged("blacktree.key", key)).toHaveLength(1);
  });

  test("overrides over 8,192 characters are refused before any call", async () => {
    const before = emu.count("RunTask");
    const err = await failure(fargate.launch(request({ env: { BIG: "x".repeat(8_200) } }), ctx));
    expect(err).toEqual(expect.objectContaining({ type: "LAUNCH_FAILED", retryable: false, message: expect.stringMatching(/8192|8,192/) }));
    expect(emu.count("RunTask")).toBe(before);
  });

  test("a task that vanishes (MISSING) is lost; TaskFailedToStart is lost with its reason", async () => {
    const vanishing = await fargate.launch(request({ env: { BLACKTREE_TEST_RUN_MS: "600000" } }), ctx);
    const failing = await fargate.launch(request({ env: { BLACKTREE_TEST_STOP_CODE: "TaskFailedToStart" } }), ctx);
    emu.ecs.forget(vanishing.taskArn);
    const statuses = await waitFor(async () => {
      const st = await fargate.inspect([vanishing, failing], ctx);
      return st.every((s) => s.state === "lost") ? st : null;
    });
    expect(statuses.find((s) => s.key === vanishing.key)).toEqual(expect.objectContaining({ reason: expect.stringMatching(/MISSING/) }));
    expect(statuses.find((s) => s.key === failing.key)).toEqual(expect.objectContaining({ reason: expect.stringMatching(/failed to start/) }));
  });

  test("the emulator's clock drives lifecycles: advancing it past the run time ends a long task; a slow DescribeTasks still answers", async () => {
    const handle = await fargate.launch(request({ env: { BLACKTREE_TEST_RUN_MS: "3600000", BLACKTREE_TEST_EXIT: "7" } }), ctx);
    await waitFor(async () => (await fargate.inspect([handle], ctx))[0].state === "running");
    emu.clock.advance(3_600_000);
    emu.inject({ action: "DescribeTasks", kind: "slow", ms: 300 });
    const started = Date.now();
    expect(await fargate.inspect([handle], ctx)).toEqual([{ key: handle.key, state: "exited", exitCode: 7 }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  test("the workload env is all the overrides carry: no secret value, no orchestrator credential", async () => {
    const req = request({ env: { BLACKTREE_SECRETS: "token" }, secrets: ["token"] });
    const handle = await fargate.launch(req, ctx);
    const sent = JSON.stringify(emu.ecs.tasks.get(handle.taskArn)!.overrides);
    expect(sent).toContain("BLACKTREE_SECRETS");
    expect(sent).not.toContain(process.env.AWS_SECRET_ACCESS_KEY!);
    expect(sent).not.toContain(process.env.AWS_ACCESS_KEY_ID!);
  });
});

describe("ec2", () => {
  const workload = (env: Record<string, string> = {}): Workload => ({ image: "registry.local/worker:1", command: ["worker", "--once"], env, secrets: ["token"] });

  test("InsufficientInstanceCapacity is a retryable LAUNCH_FAILED", async () => {
    emu.inject({ action: "RunInstances", kind: "capacity", times: 5 });
    const err = await failure(ec2.launch(request(workload()), ctx));
    expect(err).toEqual(expect.objectContaining({ type: "LAUNCH_FAILED", retryable: true, message: expect.stringMatching(/InsufficientInstanceCapacity/) }));
  });

  test("RequestLimitExceeded is absorbed; a dropped answer is retried with the same ClientToken: one instance", async () => {
    emu.inject({ action: "RunInstances", kind: "throttle", times: 3 });
    emu.inject({ action: "RunInstances", kind: "drop" });
    const req = request(workload());
    const handle = await ec2.launch(req, ctx);
    expect(emu.ec2.instancesTagged("blacktree.key", req.key).map((i) => i.id)).toEqual([handle.instanceId]);
  });

  test("user data: base64 on the wire, runs the container with the job env and powers off; no secret, no AWS credential", async () => {
    const req = request(workload({ BLACKTREE_JOB_ID: "job_x", QUOTED: "it's $HOME" }));
    const handle = await ec2.launch(req, ctx);
    const inst = emu.ec2.instances.get(handle.instanceId)!;
    expect(inst.shutdownBehavior).toBe("terminate");
    expect(inst.instanceProfile).toBeNull();
    const script = emu.ec2.userDataOf(handle.instanceId);
    expect(script).toMatch(/^#!\/bin\/bash\n/);
    expect(script).toContain("docker run --rm");
    expect(script).toContain(`-e 'QUOTED=it'\\''s $HOME'`);
    expect(script).toContain("'registry.local/worker:1' 'worker' '--once'");
    expect(script.trimEnd().endsWith("shutdown -h now")).toBe(true);
    expect(script).not.toContain(process.env.AWS_SECRET_ACCESS_KEY!);
    expect(script).not.toContain(process.env.AWS_ACCESS_KEY_ID!);
    expect(Object.keys(inst.tags).sort()).toEqual(["blacktree.attempt", "blacktree.deployment", "blacktree.job", "blacktree.key", "blacktree.owner", "blacktree.type"]);
  });

  test("an instance terminated from outside before the worker ended is lost", async () => {
    const handle = await ec2.launch(request(workload({ BLACKTREE_TEST_RUN_MS: "600000" })), ctx);
    await ec2.stop(handle, "test: terminated from outside", ctx);
    expect((await ec2.inspect([handle]))[0]).toEqual(expect.objectContaining({ state: "lost", reason: expect.stringMatching(/without an exit code/) }));
  });
});
