import { startAwsEmulator, useDummyAwsCredentials, type AwsEmulator } from "../support/aws-emulator";
import { useAwsTargets } from "../support/aws-node";
import { startNode, TestNode } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/**
 * The fargate target at scale on the emulator: many jobs through a throttling ECS stay
 * under the configured RunTask rate and none fails; many running tasks are reconciled
 * with DescribeTasks in batches of 100.
 */
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];
let emu: AwsEmulator;
let node: TestNode | undefined;

beforeAll(async () => {
  useDummyAwsCredentials();
  emu = await startAwsEmulator({ ecs: { phaseMs: 20 } });
});
afterEach(async () => {
  await node?.stop();
  node = undefined;
});
afterAll(() => emu?.stop());

/** Submits through the broker (the REST layer is not under test here); unique deployments keep job ids apart. */
async function submitMany(n: TestNode, count: number, params: Record<string, unknown>): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 50) {
    const chunk = Array.from({ length: Math.min(50, count - i) }, (_, j) => n.broker.call("intake.submit", { body: { type: "emulated", deploymentId: `d${i + j}-${Date.now()}`, ...params } }));
    for (const { job } of (await Promise.all(chunk)) as Array<{ job: { id: string } }>) ids.push(job.id);
  }
  return ids;
}

const states = async (n: TestNode, ids: string[]) => Promise.all(ids.map(async (id) => (await n.rt.store.getJob(id))!.state));

test("500 jobs on fargate through an ECS that throttles: all succeed, none from a retry, RunTask never above 50 in any 1 s window", async () => {
  const RATE = 50;
  emu.throttleAbove("RunTask", 40); // ECS's own limit, below ours: every second some calls are throttled
  const since = Date.now();
  node = await startNode({
    env: { RECONCILE_INTERVAL_MS: "100" },
    configure: (c) => {
      useAwsTargets(c, emu, { fargate: { runTaskPerSecond: RATE } });
      c.routing.byType = { emulated: "fargate" };
      c.limits = { global: 1000 };
    },
  });
  const ids = await submitMany(node, 500, { runMs: 50 });
  const started = Date.now();
  const finals = await waitFor(
    async () => {
      const s = await states(node!, ids);
      return s.every((st) => FINAL.includes(st)) ? s : null;
    },
    { timeout: 90_000, interval: 250, message: "500 jobs never all finished" },
  );
  const elapsed = Date.now() - started;
  expect(finals.filter((s) => s !== "succeeded")).toEqual([]);
  for (const id of ids.slice(0, 50)) expect(await node.rt.store.getAttempts(id)).toHaveLength(1); // no job needed a second attempt
  const throttled = emu.calls.filter((c) => c.action === "RunTask" && c.at >= since && !c.accepted).length;
  const maxPerSecond = emu.maxPerSecond("RunTask");
  expect(throttled).toBeGreaterThan(0);
  expect(maxPerSecond).toBeLessThanOrEqual(RATE);
  console.log(`📊 500 fargate jobs: ${elapsed} ms, ${emu.count("RunTask", since)} RunTask calls (${throttled} throttled), at most ${maxPerSecond} RunTask/s`);
}, 180_000);

test("1,000 running tasks are reconciled with 10 DescribeTasks calls in one lifecycle pass", async () => {
  emu.clearFaults();
  node = await startNode({
    // Only the pass this test triggers reconciles; orphan reaping (ListTasks) stays out of it.
    env: { RECONCILE_INTERVAL_MS: "600000", REAP_INTERVAL_MS: "3600000" },
    configure: (c) => {
      useAwsTargets(c, emu, { fargate: { runTaskPerSecond: 1000 } });
      c.routing.byType = { emulated: "fargate" };
      c.limits = { global: 2000 };
    },
  });
  const ids = await submitMany(node, 1000, { runMs: 600_000 });
  await waitFor(async () => {
    const active = await node!.rt.store.activeAttempts();
    return active.length === 1000 && active.every((a) => a.attempt.handle !== null);
  }, { timeout: 60_000, interval: 250, message: "1,000 tasks never all launched" });
  // Every fresh attempt gets one prompt inspection of its own; count the pass once those are over.
  let seen = -1;
  let since = Date.now();
  await waitFor(() => {
    const n = emu.count("DescribeTasks");
    if (n !== seen) [seen, since] = [n, Date.now()];
    return Date.now() - since > 500;
  }, { timeout: 30_000, interval: 50, message: "the fresh attempts' inspections never settled" });
  const before = emu.count("DescribeTasks");
  await node.broker.call("lifecycle.tick");
  const calls = emu.count("DescribeTasks") - before;
  expect(calls).toBeLessThanOrEqual(10);
  expect((await states(node, ids)).filter((s) => s !== "running")).toEqual([]);
  console.log(`📊 1,000 running fargate tasks: ${calls} DescribeTasks calls in one reconcile pass`);
  // Orphan reaping's list pages through ListTasks (100 per page) and describes 100 tasks per call.
  const listed = emu.count("ListTasks");
  const { keys } = (await node.broker.call("targets.fargate.list", {})) as { keys: string[] };
  expect(new Set(keys).size).toBe(1000);
  expect(emu.count("ListTasks") - listed).toBe(10);
}, 180_000);
