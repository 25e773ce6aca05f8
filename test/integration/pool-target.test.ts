import type { ServiceBroker } from "moleculer";
import type { LaunchRequest } from "../../lib/sdk";
import { createPoolTarget, SELECTOR_ENV } from "../../plugins/targets/pool";
import { tempDir } from "../support/orchestrator";
import { startWorkers, stopWorkers, testBroker, uniqueNamespace, waitForWorkers, WorkerNode } from "../support/pool";
import { quietContext } from "../support/quiet-context";

/** What the conformance suite does not cover: label selection and capacity, on two real worker nodes. */
const namespace = uniqueNamespace("pool-target");
const ctx = quietContext(tempDir("blacktree-pool-target-"));
const target = createPoolTarget();
let broker: ServiceBroker;
let workers: WorkerNode[];
const [zoneA, zoneB] = [`${namespace}-a`, `${namespace}-b`];

beforeAll(async () => {
  workers = [...startWorkers(namespace, [zoneA], { WORKER_CAPACITY: "1", WORKER_LABELS: "zone=a" }), ...startWorkers(namespace, [zoneB], { WORKER_CAPACITY: "1", WORKER_LABELS: "zone=b,gpu=true" })];
  const joined = await testBroker(namespace, `${namespace}-orchestrator`);
  broker = joined.broker;
  ctx.cluster = joined.cluster;
  await waitForWorkers(joined.cluster, [zoneA, zoneB]);
  await target.init({}, ctx);
}, 120_000);

afterAll(async () => {
  if (broker) for (const key of await target.list(ctx).catch(() => [])) await target.stop({ key } as never, "teardown", ctx);
  await broker?.stop();
  await stopWorkers(workers ?? []);
});

const sleeper = (key: string, selector: string): LaunchRequest => ({
  jobId: key.split(":")[0],
  attempt: 1,
  key,
  workload: { command: ["sleep", "300"], env: { [SELECTOR_ENV]: selector } },
  labels: {},
});

test("a launch goes to a free node whose labels match; a full pool is a retryable launch failure", async () => {
  const gpu = await target.launch(sleeper("job_gpu:1", "gpu=true"), ctx);
  expect(gpu).toEqual({ key: "job_gpu:1", nodeID: zoneB });
  // zone b is full now (capacity 1): another gpu workload has nowhere to go.
  await expect(target.launch(sleeper("job_gpu2:1", "gpu=true"), ctx)).rejects.toMatchObject({ type: "LAUNCH_FAILED", retryable: true, message: expect.stringContaining("no free worker node matches gpu=true") });
  // …but asking again for the running key is answered, not refused.
  expect(await target.launch(sleeper("job_gpu:1", "gpu=true"), ctx)).toEqual(gpu);
  expect(await target.launch(sleeper("job_any:1", ""), ctx)).toEqual({ key: "job_any:1", nodeID: zoneA });
  await expect(target.launch(sleeper("job_bad:1", "zone"), ctx)).rejects.toMatchObject({ type: "LAUNCH_FAILED", retryable: false });
  const statuses = await target.inspect([gpu, { key: "job_any:1", nodeID: zoneA }], ctx);
  expect(statuses.map((s) => s.state)).toEqual(["running", "running"]);
}, 60_000);
