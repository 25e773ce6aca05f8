import type { JobEvent } from "../../lib/jobs/model";
import type { JobStore } from "../../lib/store/job-store";
import { JobIdentities } from "../../lib/status/job-identities";

const event = (jobId: string, over: Partial<JobEvent> = {}): JobEvent => ({ seq: 1, jobId, kind: "job.launching", from: "queued", to: "launching", attempt: 1, data: {}, at: 10, ...over });
const created = (jobId: string) => event(jobId, { kind: "job.created", from: null, to: "queued", attempt: null, data: { type: "build", deploymentId: `d-${jobId}`, source: "amqp", traceContext: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }, at: 5 });

/** A store that only answers getJob, counting the reads. */
function store() {
  const reads: string[] = [];
  const s = { getJob: async (id: string) => (reads.push(id), { id, type: "deploy", deploymentId: "from-store", source: "rest", createdAt: 1 }) } as unknown as JobStore;
  return { s, reads };
}

test("a job's identity is learnt from its creation event: later events read no job row", async () => {
  const { s, reads } = store();
  const ids = new JobIdentities(s);
  expect(await ids.of(created("a"))).toEqual({ type: "build", deploymentId: "d-a", source: "amqp", createdAt: 5, traceContext: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" });
  expect(await ids.of(event("a"))).toEqual({ type: "build", deploymentId: "d-a", source: "amqp", createdAt: 5, traceContext: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" });
  expect(reads).toEqual([]);
});

test("a job first seen mid-history is read once from the store; the memory is bounded, least recently used first", async () => {
  const { s, reads } = store();
  const ids = new JobIdentities(s, 2);
  await ids.of(event("x"));
  await ids.of(event("x"));
  expect(reads).toEqual(["x"]);
  await ids.of(created("b"));
  await ids.of(event("x")); // x is now the most recently used
  await ids.of(created("c")); // evicts b
  await ids.of(event("b"));
  expect(reads).toEqual(["x", "b"]);
});
