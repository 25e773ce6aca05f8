import { startAwsEmulator, useDummyAwsCredentials, type AwsEmulator } from "../support/aws-emulator";
import { useAwsTargets } from "../support/aws-node";
import { startNode, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/** Jobs end to end on the AWS targets (emulated): ordered fallback fargate → ec2, and a RunTask answer lost on the wire. */
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];
let emu: AwsEmulator;
let node: TestNode;

async function submit(body: Record<string, unknown>): Promise<string> {
  const res = await node.http("POST", "/api/jobs", body);
  if (res.status !== 202) throw new Error(`submit refused: ${res.text}`);
  return res.body.job.id;
}
const finished = (id: string) =>
  waitFor(
    async () => {
      const r = await node.http("GET", `/api/jobs/${id}`);
      return FINAL.includes(r.body?.job?.state) ? r.body : null;
    },
    { timeout: 20_000, message: `job ${id} never finished` },
  );

beforeAll(async () => {
  useDummyAwsCredentials();
  emu = await startAwsEmulator();
  node = await startNode({
    env: { REAP_INTERVAL_MS: "300" },
    configure: (c) => {
      // A short launch patience, so a RunTask that never answers falls back within the test.
      useAwsTargets(c, emu, { fargate: { launchPatienceMs: 1_000, maxAttempts: 1 } });
      c.routing.byType = { emulated: "fargate" };
      c.routing.fallback = { fargate: ["ec2"] };
    },
  });
});
afterAll(async () => {
  await node?.stop();
  await emu?.stop();
});

test("a job routed to fargate whose RunTask answers a capacity failure runs on ec2, in the same attempt", async () => {
  emu.inject({ action: "RunTask", kind: "capacity" });
  const id = await submit({ type: "emulated" });
  const done = await finished(id);
  expect(done.job.state).toBe("succeeded");
  expect(done.attempts).toHaveLength(1);
  expect(done.attempts[0]).toEqual(expect.objectContaining({ target: "ec2", key: `${id}:1@ec2`, outcome: "SUCCEEDED" }));
  expect(done.history).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "attempt.fallback", data: expect.objectContaining({ from: "fargate", to: "ec2" }) })]));
  expect(emu.ecs.tasksTagged("blacktree.job", id)).toHaveLength(0);
  expect(emu.ec2.instancesTagged("blacktree.key", `${id}:1@ec2`)).toHaveLength(1);
  const metrics = await node.http("GET", "/metrics");
  expect(metrics.text).toMatch(/blacktree_launch_fallbacks_total\{from="fargate",to="ec2"\} 1/);
});

test("a RunTask that created its task but never answered falls back to ec2, and the unheard fargate task is reaped as an orphan", async () => {
  emu.inject({ action: "RunTask", kind: "drop", times: 1_000 }); // every try creates (or finds) the task, then drops the answer
  const id = await submit({ type: "emulated", runMs: 3_000 });
  const onEc2 = await waitFor(async () => (await node.http("GET", `/api/jobs/${id}`)).body?.attempts?.[0]?.target === "ec2", { message: "never fell back" });
  expect(onEc2).toBe(true);
  emu.clearFaults();
  const [unheard] = emu.ecs.tasksTagged("blacktree.job", id);
  expect(emu.ecs.tasks.get(unheard)!.tags).toEqual(expect.arrayContaining([{ key: "blacktree.key", value: `${id}:1` }]));
  await waitFor(() => emu.ecs.tasks.get(unheard)!.stopReason?.includes("orphan"), { message: "the unheard fargate task was never stopped" });
  expect((await finished(id)).job.state).toBe("succeeded");
  expect(emu.ec2.instancesTagged("blacktree.job", id)).toHaveLength(1);
});

test("succeed, then drop the connection on RunTask: exactly one task exists for the attempt, and the job succeeds on fargate", async () => {
  emu.inject({ action: "RunTask", kind: "drop" });
  const id = await submit({ type: "emulated" });
  const done = await finished(id);
  expect(done.job.state).toBe("succeeded");
  expect(done.attempts).toEqual([expect.objectContaining({ target: "fargate", key: `${id}:1` })]);
  expect(emu.ecs.tasksTagged("blacktree.job", id)).toHaveLength(1);
});

test("a worker's exit code on fargate is the job's: exit 3 fails it (no retry configured)", async () => {
  const id = await submit({ type: "emulated", exit: 3, retry: { maxAttempts: 1 } });
  const done = await finished(id);
  expect(done.job.state).toBe("failed");
  expect(done.attempts).toEqual([expect.objectContaining({ outcome: "EXIT_NONZERO", exitCode: 3 })]);
});

test("a job's secret never reaches AWS: not in the ECS overrides, not in the EC2 user data (only its name)", async () => {
  const secret = "ghp_secretvalue0123456789";
  emu.inject({ action: "RunTask", kind: "capacity" }); // one launch on each target
  const id = await submit({ type: "emulated", token: secret });
  expect((await finished(id)).job.state).toBe("succeeded");
  const calls = [...emu.ecs.tasks.values()].map((t) => JSON.stringify(t.overrides)).concat([...emu.ec2.instances.keys()].map((i) => emu.ec2.userDataOf(i)));
  expect(calls.join("\n")).toContain("'BLACKTREE_SECRETS=token'");
  for (const text of calls) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain(process.env.AWS_SECRET_ACCESS_KEY!);
  }
});

describe("ec2: the worker's report decides when EC2 cannot tell", () => {
  const callbackOf = (userData: string) => ({
    url: /BLACKTREE_CALLBACK_URL=([^']+)/.exec(userData)![1],
    token: /BLACKTREE_CALLBACK_TOKEN=([^']+)/.exec(userData)![1],
  });

  test.each([
    [true, "succeeded"],
    [false, "failed"],
  ])("an instance that terminates without its exit code tag, after the worker reported success=%s, ends %s", async (success, state) => {
    const id = await submit({ type: "emulated", target: "ec2", runMs: 1_500, untagged: true, retry: { maxAttempts: 1 } });
    const inst = await waitFor(() => emu.ec2.instancesTagged("blacktree.job", id)[0], { message: "no instance" });
    const cb = callbackOf(emu.ec2.userDataOf(inst.id));
    const res = await fetch(`${cb.url}/result`, { method: "POST", headers: { authorization: `Bearer ${cb.token}`, "content-type": "application/json" }, body: JSON.stringify({ success }) });
    expect(res.status).toBe(200);
    const done = await finished(id);
    expect(done.job.state).toBe(state);
    expect(done.attempts[0].outcome).toBe(success ? "SUCCEEDED" : "WORKER_LOST");
  });
});
