import type { Attempt, Job, NewJob } from "../../lib/jobs/model";
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS } from "../../lib/jobs/policy";
import type { Limits } from "../../lib/jobs/limits";
import type { Claim, JobStore } from "../../lib/store/job-store";

export interface ConformanceOptions {
  /**
   * Another connection to the same database as `store`. When given, the concurrency
   * tests claim through both connections at once.
   */
  openPeer?: (store: JobStore) => Promise<JobStore>;
}

const T0 = 1_700_000_000_000;
const SECRET = "ghp_conformance-secret-value";
/** A W3C traceparent: the job's trace context is stored with it (lib/tracing.ts). */
const TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/**
 * The behaviour every JobStore dialect must show. `makeStore` returns a store on an empty
 * database; the suite migrates it and closes it after each test.
 */
export function storeConformance(name: string, makeStore: () => Promise<JobStore>, opts: ConformanceOptions = {}): void {
  describe(`JobStore conformance: ${name}`, () => {
    let store: JobStore;
    const opened: JobStore[] = [];
    let nextId = 0;

    beforeEach(async () => {
      store = await makeStore();
      opened.push(store);
      await store.migrate();
    });

    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    function newJob(overrides: Partial<NewJob> = {}): NewJob {
      nextId += 1;
      return {
        id: `job-${String(nextId).padStart(5, "0")}`,
        type: "build",
        state: "queued",
        deploymentId: null,
        priority: 0,
        target: null,
        concurrencyKey: null,
        params: { repositoryUrl: "https://git.example.test/app.git", ref: "main" },
        secrets: {},
        timeouts: DEFAULT_TIMEOUTS,
        retry: DEFAULT_RETRY,
        source: "rest",
        parentId: null,
        error: null,
        deadline: null,
        runAfter: null,
        ...overrides,
      };
    }

    async function create(overrides: Partial<NewJob> = {}, now = T0): Promise<Job> {
      return (await store.createJob(newJob(overrides), now)).job;
    }

    async function claim(limits: Limits = {}, max = 100, now = T0 + 1, s: JobStore = store): Promise<Claim[]> {
      return s.claimJobs({ now, limits, max });
    }

    async function peers(): Promise<JobStore[]> {
      if (!opts.openPeer) return [store, store];
      const peer = await opts.openPeer(store);
      opened.push(peer);
      return [store, peer];
    }

    const ids = (jobs: Array<{ id: string }>) => jobs.map((j) => j.id);
    const claimedIds = (claims: Claim[]) => claims.map((c) => c.job.id);

    it("migrates idempotently and answers ping", async () => {
      await store.migrate();
      await expect(store.ping()).resolves.toBeUndefined();
    });

    describe("createJob", () => {
      it("stores every field and returns exactly the Job shape", async () => {
        const input = newJob({
          deploymentId: "dep-1",
          priority: 3,
          target: "docker",
          concurrencyKey: "dep-1",
          parentId: "job-parent",
          deadline: T0 + 60_000,
          runAfter: T0 + 10,
          source: "amqp",
          secrets: { githubToken: SECRET },
          traceContext: TRACE,
        });
        const { job, created } = await store.createJob(input, T0);
        const expected: Job = {
          id: input.id,
          type: "build",
          state: "queued",
          deploymentId: "dep-1",
          priority: 3,
          target: "docker",
          concurrencyKey: "dep-1",
          params: input.params,
          timeouts: DEFAULT_TIMEOUTS,
          retry: DEFAULT_RETRY,
          attempt: 0,
          source: "amqp",
          parentId: "job-parent",
          createdAt: T0,
          updatedAt: T0,
          runAfter: T0 + 10,
          deadline: T0 + 60_000,
          result: null,
          error: null,
          version: 1,
          submittedBy: null,
          traceContext: TRACE,
        };
        expect(created).toBe(true);
        expect(job).toStrictEqual(expected);
        expect(await store.getJob(input.id)).toStrictEqual(expected);
        const events = await store.getEvents(input.id);
        expect(events).toStrictEqual([
          {
            seq: expect.any(Number),
            jobId: input.id,
            kind: "job.created",
            from: null,
            to: "queued",
            attempt: null,
            // The trace context rides along, so the status sinks learn it with the identity.
            data: { type: "build", deploymentId: "dep-1", source: "amqp", traceContext: TRACE },
            at: T0,
          },
        ]);
      });

      it("is idempotent on id: the existing job comes back and nothing is written", async () => {
        const first = await store.createJob(newJob({ id: "same", secrets: { githubToken: "first" } }), T0);
        const second = await store.createJob(newJob({ id: "same", type: "deploy", priority: 9, secrets: { githubToken: "second" } }), T0 + 5);
        expect(second.created).toBe(false);
        expect(second.job).toStrictEqual(first.job);
        expect(await store.getJob("same")).toStrictEqual(first.job);
        expect(await store.getEvents("same")).toHaveLength(1);
        expect(await store.getSecrets("same")).toStrictEqual({ githubToken: "first" });
      });

      it("stores a rejected job with its error and a job.rejected event", async () => {
        const error = { type: "VALIDATION_FAILED", message: "Invalid job", fields: [{ field: "params.ref", message: "is required" }] };
        const job = await create({ state: "rejected", error });
        expect(job.state).toBe("rejected");
        expect(job.error).toStrictEqual(error);
        const [event] = await store.getEvents(job.id);
        expect(event).toMatchObject({ kind: "job.rejected", from: null, to: "rejected" });
        expect(await claim()).toEqual([]);
      });

      it("refuses to create a job in a state jobs are not born in", async () => {
        const input = { ...newJob(), state: "running" } as unknown as NewJob;
        await expect(store.createJob(input, T0)).rejects.toMatchObject({ type: "INVALID_TRANSITION" });
        expect(await store.getJob(input.id)).toBeNull();
      });

      it("returns null for an unknown id", async () => {
        expect(await store.getJob("nope")).toBeNull();
      });

      it("gives jobs submitted together each its own outcome, in the order submitted", async () => {
        const existing = await create({ id: "was-there" });
        const bad = { ...newJob({ id: "unserializable" }), params: { big: BigInt(1) } } as unknown as NewJob;
        const inputs = [newJob({ id: "t-1", secrets: { githubToken: SECRET } }), newJob({ id: "was-there", priority: 9 }), bad, newJob({ id: "t-2" }), newJob({ id: "t-2", type: "deploy" }), newJob({ id: "t-3" })];
        const outcomes = await Promise.allSettled(inputs.map((input) => store.createJob(input, T0 + 1)));
        expect(outcomes.map((o) => (o.status === "fulfilled" ? [o.value.job.id, o.value.created] : "rejected"))).toEqual([["t-1", true], ["was-there", false], "rejected", ["t-2", true], ["t-2", false], ["t-3", true]]);
        expect((outcomes[1] as PromiseFulfilledResult<{ job: Job }>).value.job).toStrictEqual(existing);
        expect((outcomes[4] as PromiseFulfilledResult<{ job: Job }>).value.job.type).toBe("build");
        expect(await store.getJob("unserializable")).toBeNull();
        expect(await store.getSecrets("t-1")).toStrictEqual({ githubToken: SECRET });
        const events = (await store.readEvents(0, 100)).filter((e) => e.jobId !== "was-there");
        expect(events.map((e) => e.jobId)).toEqual(["t-1", "t-2", "t-3"]);
        expect(claimedIds(await claim())).toEqual(["was-there", "t-1", "t-2", "t-3"]);
      });
    });

    /**
     * createJobs: many jobs in one transaction, each exactly as createJob would store it.
     * On the code before it existed every case failed with "store.createJobs is not a function".
     */
    describe("createJobs", () => {
      it("stores each job as createJob would, in order, with its event and sealed secrets", async () => {
        const inputs = [
          newJob({ deploymentId: "dep-a", secrets: { githubToken: SECRET }, source: "amqp" }),
          newJob({ deploymentId: "dep-b", state: "rejected", error: { type: "VALIDATION_FAILED", message: "Invalid job", fields: [{ field: "repository", message: "required" }] }, source: "amqp" }),
          newJob({ deploymentId: "dep-c", priority: 5, target: "docker" }),
        ];
        const results = await store.createJobs(inputs, T0);
        expect(results.map((r) => [r.job.id, r.created, r.job.state])).toEqual([
          [inputs[0].id, true, "queued"],
          [inputs[1].id, true, "rejected"],
          [inputs[2].id, true, "queued"],
        ]);
        // The same shape as one createJob of the same input gives.
        const single = (await store.createJob({ ...inputs[2], id: "single" }, T0)).job;
        expect(results[2].job).toStrictEqual({ ...single, id: inputs[2].id });
        for (const r of results) expect(await store.getJob(r.job.id)).toStrictEqual(r.job);
        expect(results.every((r) => r.job.createdAt === T0 && r.job.version === 1)).toBe(true);
        const events = (await store.readEvents(0, 100)).filter((e) => e.jobId !== "single");
        expect(events.map((e) => [e.jobId, e.kind, e.to, e.at])).toEqual([
          [inputs[0].id, "job.created", "queued", T0],
          [inputs[1].id, "job.rejected", "rejected", T0],
          [inputs[2].id, "job.created", "queued", T0],
        ]);
        expect(events[0].data).toStrictEqual({ type: "build", deploymentId: "dep-a", source: "amqp" });
        expect(await store.getSecrets(inputs[0].id)).toStrictEqual({ githubToken: SECRET });
        expect(JSON.stringify([results, events])).not.toContain(SECRET);
        expect(claimedIds(await claim())).toEqual([inputs[2].id, "single", inputs[0].id]);
      });

      it("is idempotent per id: existing jobs come back unchanged, and a repeated id within the batch is created once", async () => {
        const existing = await create({ id: "seen", secrets: { githubToken: "first" } });
        const results = await store.createJobs([newJob({ id: "seen", priority: 9, secrets: { githubToken: "second" } }), newJob({ id: "twice" }), newJob({ id: "twice", type: "deploy" }), newJob({ id: "fresh" })], T0 + 5);
        expect(results.map((r) => [r.job.id, r.created])).toEqual([
          ["seen", false],
          ["twice", true],
          ["twice", false],
          ["fresh", true],
        ]);
        expect(results[0].job).toStrictEqual(existing);
        expect(results[2].job).toStrictEqual(results[1].job);
        expect(results[1].job.type).toBe("build");
        expect(await store.getSecrets("seen")).toStrictEqual({ githubToken: "first" });
        expect((await store.getEvents("seen")).length).toBe(1);
        expect((await store.getEvents("twice")).length).toBe(1);
      });

      it("is one transaction: a job that cannot be written leaves none of the batch behind", async () => {
        const before = (await store.readEvents(0, 100)).length;
        const bad = { ...newJob({ id: "unserializable" }), params: { big: BigInt(1) } } as unknown as NewJob;
        await expect(store.createJobs([newJob({ id: "first-of-batch", secrets: { githubToken: SECRET } }), bad], T0)).rejects.toThrow();
        expect(await store.getJob("first-of-batch")).toBeNull();
        expect(await store.getSecrets("first-of-batch")).toStrictEqual({});
        expect((await store.readEvents(0, 100)).length).toBe(before);
      });

      it("refuses the whole batch when one job is in a state jobs are not born in", async () => {
        const input = { ...newJob({ id: "born-running" }), state: "running" } as unknown as NewJob;
        await expect(store.createJobs([newJob({ id: "ok-one" }), input], T0)).rejects.toMatchObject({ type: "INVALID_TRANSITION" });
        expect(await store.getJob("ok-one")).toBeNull();
        expect(await store.getJob("born-running")).toBeNull();
      });

      it("accepts an empty batch", async () => {
        expect(await store.createJobs([], T0)).toEqual([]);
        expect(await store.readEvents(0, 10)).toEqual([]);
      });
    });

    describe("secrets", () => {
      it("are kept apart: never in a job, a listing, an attempt or an event", async () => {
        const job = await create({ secrets: { githubToken: SECRET, other: "x-other" }, target: "docker" });
        const [claimed] = await claim();
        await store.transition(job.id, { from: "launching", to: "running", now: T0 + 2 });
        expect(await store.getSecrets(job.id)).toStrictEqual({ githubToken: SECRET, other: "x-other" });
        const everything = JSON.stringify([
          await store.getJob(job.id),
          await store.listJobs({}),
          await store.jobsInStates(["running"]),
          await store.getEvents(job.id),
          await store.readEvents(0, 100),
          await store.getAttempts(job.id),
          await store.activeAttempts(),
          claimed,
        ]);
        expect(everything).not.toContain(SECRET);
        expect(everything).not.toContain("x-other");
      });

      it("are wiped by a final transition, in its transaction; a retrying job keeps them", async () => {
        const job = await create({ secrets: { githubToken: SECRET } });
        await claim();
        await store.transition(job.id, { from: "launching", to: "retrying", patch: { runAfter: T0 + 5 }, now: T0 + 2 });
        expect(await store.getSecrets(job.id)).toStrictEqual({ githubToken: SECRET });
        await store.transition(job.id, { from: "retrying", to: "cancelled", now: T0 + 3 });
        expect(await store.getSecrets(job.id)).toStrictEqual({});
      });

      it("are wiped with a final transition, for that job only", async () => {
        const a = await create({ secrets: { githubToken: "a-token" } });
        const b = await create({ secrets: { githubToken: "b-token" } });
        await store.transition(a.id, { from: "queued", to: "cancelled" });
        expect(await store.getSecrets(a.id)).toStrictEqual({});
        expect(await store.getSecrets(b.id)).toStrictEqual({ githubToken: "b-token" });
        expect(await store.getSecrets("unknown")).toStrictEqual({});
      });

      it("takeSecrets: once per launch key of the live attempt, recorded with the key; concurrent takes get them once", async () => {
        const job = await create({ secrets: { githubToken: SECRET } });
        const [{ attempt }] = await claim();
        const takes = await Promise.all([1, 2, 3].map(() => store.takeSecrets(job.id, 1, attempt.key)));
        expect(takes.filter((t) => t !== null)).toStrictEqual([{ githubToken: SECRET }]);
        expect(await store.takeSecrets(job.id, 1, attempt.key)).toBeNull();
        const fetched = (await store.getEvents(job.id)).filter((e) => e.kind === "attempt.secrets_fetched");
        expect(fetched.map((e) => [e.attempt, e.data])).toStrictEqual([[1, { names: ["githubToken"], key: attempt.key }]]);
        expect(JSON.stringify(await store.readEvents(0, 100))).not.toContain(SECRET);
        // A fallback moves the attempt to a new key: that launch may fetch once; the old key never again.
        await store.updateAttempt(job.id, 1, { target: "ec2", key: `${attempt.key}@ec2` });
        expect(await store.takeSecrets(job.id, 1, attempt.key)).toBeNull();
        expect(await store.takeSecrets(job.id, 1, `${attempt.key}@ec2`)).toStrictEqual({ githubToken: SECRET });
        expect(await store.takeSecrets(job.id, 1, `${attempt.key}@ec2`)).toBeNull();
      });

      it("takeSecrets: nothing for a queued job, a stale attempt, an unknown key or an ended job, and nothing recorded", async () => {
        const job = await create({ secrets: { githubToken: SECRET } });
        expect(await store.takeSecrets(job.id, 0, `${job.id}:0`)).toBeNull();
        const [{ attempt }] = await claim();
        expect(await store.takeSecrets(job.id, 2, `${job.id}:2`)).toBeNull();
        expect(await store.takeSecrets(job.id, 1, "someone-else:1")).toBeNull();
        expect(await store.takeSecrets("unknown", 1, "unknown:1")).toBeNull();
        await store.transition(job.id, { from: "launching", to: "failed", now: T0 + 2 });
        expect(await store.takeSecrets(job.id, 1, attempt.key)).toBeNull();
        expect((await store.getEvents(job.id)).some((e) => e.kind === "attempt.secrets_fetched")).toBe(false);
      });
    });

    describe("transition", () => {
      it("is a compare-and-set: a job not in `from` is left alone and no event is written", async () => {
        const job = await create();
        expect(await store.transition(job.id, { from: ["launching", "running"], to: "succeeded", now: T0 + 1 })).toBeNull();
        expect(await store.getJob(job.id)).toStrictEqual(job);
        expect(await store.getEvents(job.id)).toHaveLength(1);
        expect(await store.transition("unknown", { from: "queued", to: "cancelled" })).toBeNull();
      });

      it("applies the patch, bumps version and updatedAt, and records the actual previous state", async () => {
        const job = await create({ target: "docker" });
        await claim();
        const error = { type: "WORKER_LOST", message: "the container vanished" };
        const updated = await store.transition(job.id, {
          from: ["launching", "running"],
          to: "retrying",
          patch: { runAfter: T0 + 5_000, error },
          now: T0 + 100,
        });
        expect(updated).toStrictEqual({ ...job, state: "retrying", attempt: 1, runAfter: T0 + 5_000, error, updatedAt: T0 + 100, version: 3 });
        expect(await store.getJob(job.id)).toStrictEqual(updated);
        const last = (await store.getEvents(job.id)).at(-1);
        expect(last).toMatchObject({ kind: "job.retrying", from: "launching", to: "retrying", attempt: 1, data: {}, at: T0 + 100 });
      });

      it("clears fields patched to null and keeps those not mentioned", async () => {
        const job = await create({ target: "docker", runAfter: T0 });
        await claim();
        await store.transition(job.id, { from: "launching", to: "retrying", patch: { runAfter: T0 + 50 }, now: T0 + 2 });
        const requeued = await store.transition(job.id, { from: "retrying", to: "queued", patch: { runAfter: null, target: null }, now: T0 + 3 });
        expect(requeued).toMatchObject({ state: "queued", runAfter: null, target: null, attempt: 1 });
        const done = await store.transition(job.id, { from: "queued", to: "cancelled", patch: { result: { imageUrl: null, note: "n" } }, now: T0 + 4 });
        expect(done).toMatchObject({ state: "cancelled", result: { imageUrl: null, note: "n" }, error: null, target: null });
      });

      it("records the given event kind and data", async () => {
        const job = await create();
        await store.transition(job.id, { from: "queued", to: "cancelled", event: { kind: "job.cancel_requested", data: { by: "alice" } }, now: T0 + 1 });
        expect((await store.getEvents(job.id)).at(-1)).toMatchObject({ kind: "job.cancel_requested", from: "queued", to: "cancelled", attempt: null, data: { by: "alice" } });
      });

      it("throws INVALID_TRANSITION for a forbidden edge, before touching the job", async () => {
        const job = await create();
        await expect(store.transition(job.id, { from: "queued", to: "succeeded" })).rejects.toMatchObject({ type: "INVALID_TRANSITION" });
        // `queued -> cancelled` is allowed, but `succeeded -> cancelled` is not: any bad edge is a bug.
        await expect(store.transition(job.id, { from: ["queued", "succeeded"], to: "cancelled" })).rejects.toMatchObject({ type: "INVALID_TRANSITION" });
        expect(await store.getJob(job.id)).toStrictEqual(job);
        expect(await store.getEvents(job.id)).toHaveLength(1);
      });

      it("updates the job's current attempt in the same transaction", async () => {
        const job = await create({ target: "docker" });
        await claim();
        await store.transition(job.id, { from: "launching", to: "running", attempt: { state: "running", startedAt: T0 + 10, handle: { id: "c1" } }, now: T0 + 10 });
        expect(await store.getAttempt(job.id, 1)).toMatchObject({ state: "running", startedAt: T0 + 10, handle: { id: "c1" } });
      });

      it("writes a decision against the basis it was made on, and refuses it once the job moved on", async () => {
        const job = await create({ target: "docker" });
        const [{ job: claimed, attempt }] = await claim();
        const decision = { from: "launching" as const, to: "running" as const, expect: { attempt: 1, version: claimed.version }, basis: { job: claimed, attempt } };
        const stale = { ...decision, to: "cancelled" as const, basis: { job: claimed, attempt } };
        const running = await store.transition(job.id, { ...decision, now: T0 + 5 });
        expect(running).toMatchObject({ state: "running", version: claimed.version + 1 });
        expect(await store.getAttempt(job.id, 1)).toMatchObject({ state: "running" });
        // Made on the claimed version, which is gone: refused, nothing written.
        expect(await store.transition(job.id, { ...stale, from: ["launching", "running"], now: T0 + 6 })).toBeNull();
        expect(await store.getJob(job.id)).toStrictEqual(running);
      });

      it("reads several jobs' attempts in one call, leaving out the ones that do not exist", async () => {
        const a = await create({ target: "docker" });
        const b = await create({ target: "docker" });
        await claim();
        const found = await store.getAttemptsOf([
          { jobId: b.id, attempt: 1 },
          { jobId: a.id, attempt: 2 },
          { jobId: a.id, attempt: 1 },
          { jobId: "no-such-job", attempt: 1 },
        ]);
        expect(found.map((x) => `${x.jobId}:${x.attempt}`).sort()).toStrictEqual([`${a.id}:1`, `${b.id}:1`].sort());
        expect(found.find((x) => x.jobId === a.id)).toStrictEqual(await store.getAttempt(a.id, 1));
        expect(await store.getAttemptsOf([])).toStrictEqual([]);
      });

      it("lets exactly one of two racing transitions from the same state win", async () => {
        const [a, b] = await peers();
        const job = await create();
        const results = await Promise.all([
          a.transition(job.id, { from: "queued", to: "cancelled", now: T0 + 1 }),
          b.transition(job.id, { from: "queued", to: "failed", now: T0 + 1 }),
        ]);
        expect(results.filter((r) => r !== null)).toHaveLength(1);
        expect(await store.getEvents(job.id)).toHaveLength(2);
      });

      it("writes exactly one event per change, in order", async () => {
        const job = await create({ target: "docker" });
        await claim({}, 10, T0 + 1);
        await store.transition(job.id, { from: "launching", to: "running", now: T0 + 2 });
        await store.transition(job.id, { from: "running", to: "retrying", patch: { runAfter: T0 + 4 }, now: T0 + 3 });
        await store.transition(job.id, { from: "retrying", to: "queued", now: T0 + 4 });
        await claim({}, 10, T0 + 5);
        await store.transition(job.id, { from: "launching", to: "running", now: T0 + 6 });
        const done = await store.transition(job.id, { from: "running", to: "succeeded", patch: { result: { imageUrl: "registry/app:1" } }, now: T0 + 7 });

        const events = await store.getEvents(job.id);
        expect(events.map((e) => [e.kind, e.from, e.to, e.attempt, e.at])).toEqual([
          ["job.created", null, "queued", null, T0],
          ["job.launching", "queued", "launching", 1, T0 + 1],
          ["job.running", "launching", "running", 1, T0 + 2],
          ["job.retrying", "running", "retrying", 1, T0 + 3],
          ["job.queued", "retrying", "queued", 1, T0 + 4],
          ["job.launching", "queued", "launching", 2, T0 + 5],
          ["job.running", "launching", "running", 2, T0 + 6],
          ["job.succeeded", "running", "succeeded", 2, T0 + 7],
        ]);
        const seqs = events.map((e) => e.seq);
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
        expect(new Set(seqs).size).toBe(seqs.length);
        expect(done).toMatchObject({ state: "succeeded", attempt: 2, version: 8, result: { imageUrl: "registry/app:1" } });
      });
    });

    describe("claimJobs", () => {
      it("moves the job to launching, creates its attempt and writes the event", async () => {
        const job = await create({ target: "docker", runAfter: T0 });
        const claims = await claim({}, 10, T0 + 7);
        const expectedJob: Job = { ...job, state: "launching", attempt: 1, runAfter: null, updatedAt: T0 + 7, version: 2 };
        const expectedAttempt: Attempt = {
          jobId: job.id,
          attempt: 1,
          target: "docker",
          key: `${job.id}:1`,
          handle: null,
          state: "launching",
          launchedAt: T0 + 7,
          startedAt: null,
          endedAt: null,
          heartbeatAt: null,
          exitCode: null,
          outcome: null,
          reason: null,
          result: null,
          log: null,
          logLines: 0,
        };
        expect(claims).toStrictEqual([{ job: expectedJob, attempt: expectedAttempt }]);
        expect(await store.getJob(job.id)).toStrictEqual(expectedJob);
        expect(await store.getAttempts(job.id)).toStrictEqual([expectedAttempt]);
        expect((await store.getEvents(job.id)).at(-1)).toMatchObject({ kind: "job.launching", from: "queued", to: "launching", attempt: 1, data: { target: "docker" }, at: T0 + 7 });
        expect(await claim({}, 10, T0 + 8)).toEqual([]);
      });

      it("claims a job without a target; its attempt's target is '' until one is chosen", async () => {
        const job = await create({ target: null });
        const [c] = await claim();
        expect(c.job.target).toBeNull();
        expect(c.attempt.target).toBe("");
        expect((await store.getEvents(job.id)).at(-1)?.data).toStrictEqual({ target: null });
      });

      it("claims by priority, then first come first served (as stored, for jobs of one millisecond)", async () => {
        await create({ id: "low-old", priority: 0 }, T0 - 30);
        await create({ id: "high-new", priority: 5 }, T0 - 10);
        await create({ id: "low-b", priority: 0 }, T0 - 20);
        await create({ id: "low-a", priority: 0 }, T0 - 20);
        await create({ id: "high-old", priority: 5 }, T0 - 20);
        await create({ id: "urgent", priority: 9 }, T0);
        expect(claimedIds(await claim({}, 3))).toEqual(["urgent", "high-old", "high-new"]);
        expect(claimedIds(await claim({}, 3))).toEqual(["low-old", "low-b", "low-a"]);
      });

      it("waits for run_after", async () => {
        const job = await create({ runAfter: T0 + 1_000 });
        expect(await claim({}, 10, T0 + 999)).toEqual([]);
        expect(claimedIds(await claim({}, 10, T0 + 1_000))).toEqual([job.id]);
      });

      it("claims at most `max`", async () => {
        for (let i = 0; i < 5; i++) await create({}, T0 + i);
        expect(await claim({}, 2)).toHaveLength(2);
        expect(await claim({}, 0)).toHaveLength(0);
        expect(await claim({}, 10)).toHaveLength(3);
      });

      it("honours the global limit, counting running jobs too", async () => {
        const first = await create({}, T0 - 10);
        await create({}, T0 - 9);
        await claim({}, 2);
        await store.transition(first.id, { from: "launching", to: "running", now: T0 + 1 });
        for (let i = 0; i < 5; i++) await create({}, T0 + i);
        expect(await claim({ global: 3 })).toHaveLength(1);
        expect(await claim({ global: 3 })).toHaveLength(0);
        await store.transition(first.id, { from: "running", to: "succeeded", now: T0 + 2 });
        expect(await claim({ global: 3 })).toHaveLength(1);
      });

      it("honours per-type limits without blocking other types", async () => {
        const builds = [await create({ type: "build" }, T0 - 3), await create({ type: "build" }, T0 - 2)];
        const tests = [await create({ type: "test" }, T0 - 1), await create({ type: "test" }, T0)];
        expect(claimedIds(await claim({ byType: { build: 1 } }))).toEqual([builds[0].id, ...ids(tests)]);
        expect(await claim({ byType: { build: 1 } })).toEqual([]);
      });

      it("honours per-target limits; jobs without a target are not counted against one", async () => {
        const docker = [await create({ target: "docker" }, T0 - 3), await create({ target: "docker" }, T0 - 2)];
        const untargeted = [await create({ target: null }, T0 - 1), await create({ target: null }, T0)];
        expect(claimedIds(await claim({ byTarget: { docker: 1 } }))).toEqual([docker[0].id, ...ids(untargeted)]);
      });

      it("counts an active job against the target its attempt runs on", async () => {
        const routed = await create({ target: null }, T0 - 1);
        await claim();
        await store.updateAttempt(routed.id, 1, { target: "docker" });
        await create({ target: "docker" }, T0);
        expect(await claim({ byTarget: { docker: 1 } })).toEqual([]);
        expect(await claim({ byTarget: { docker: 2 } })).toHaveLength(1);
      });

      it("runs one job per concurrency key by default, and perKey allows more", async () => {
        const dep1 = [await create({ concurrencyKey: "dep-1" }, T0 - 4), await create({ concurrencyKey: "dep-1" }, T0 - 3)];
        const dep2 = await create({ concurrencyKey: "dep-2" }, T0 - 2);
        expect(claimedIds(await claim())).toEqual([dep1[0].id, dep2.id]);
        expect(await claim()).toEqual([]);
        await store.transition(dep1[0].id, { from: "launching", to: "failed", now: T0 + 2 });
        expect(claimedIds(await claim())).toEqual([dep1[1].id]);

        const dep3 = [await create({ concurrencyKey: "dep-3" }, T0), await create({ concurrencyKey: "dep-3" }, T0 + 1), await create({ concurrencyKey: "dep-3" }, T0 + 2)];
        expect(claimedIds(await claim({ perKey: 2 }))).toEqual(ids(dep3.slice(0, 2)));
      });

      it("does not let a job blocked by a limit hold back the jobs behind it", async () => {
        await create({ concurrencyKey: "busy" }, T0 - 10);
        await claim();
        await create({ concurrencyKey: "busy", priority: 9 }, T0 - 5);
        await create({ type: "deploy", priority: 8 }, T0 - 4);
        const free = await create({ priority: 1 }, T0);
        expect(claimedIds(await claim({ byType: { deploy: 0 } }, 1))).toEqual([free.id]);
      });

      it("claims a requeued job as its next attempt", async () => {
        const job = await create({ target: "docker" });
        await claim({}, 10, T0 + 1);
        await store.transition(job.id, { from: "launching", to: "retrying", patch: { runAfter: T0 + 100 }, now: T0 + 2 });
        await store.transition(job.id, { from: "retrying", to: "queued", now: T0 + 3 });
        expect(await claim({}, 10, T0 + 99)).toEqual([]);
        const [again] = await claim({}, 10, T0 + 100);
        expect(again.job).toMatchObject({ attempt: 2, state: "launching", runAfter: null });
        expect(again.attempt).toMatchObject({ attempt: 2, key: `${job.id}:2`, launchedAt: T0 + 100 });
        expect((await store.getAttempts(job.id)).map((a) => a.attempt)).toEqual([1, 2]);
      });

      it("never claims a job twice when claims run concurrently", async () => {
        const all: Job[] = [];
        for (let i = 0; i < 60; i++) all.push(await create({}, T0 + i));
        const claimers = await peers();
        const seen: string[] = [];
        for (let round = 0; round < 100; round++) {
          const batches = await Promise.all(claimers.flatMap((s) => [claim({}, 3, T0 + 100, s), claim({}, 3, T0 + 100, s)]));
          const got = batches.flat();
          if (!got.length) break;
          seen.push(...claimedIds(got));
        }
        expect(seen).toHaveLength(60);
        expect(new Set(seen).size).toBe(60);
        for (const job of all) expect(await store.getAttempts(job.id)).toHaveLength(1);
      });

      it("never exceeds a limit when claims run concurrently", async () => {
        for (let i = 0; i < 20; i++) await create({ concurrencyKey: `k-${i % 4}` }, T0 + i);
        const claimers = await peers();
        const batches = await Promise.all(claimers.flatMap((s) => [claim({ global: 3 }, 5, T0 + 100, s), claim({ global: 3 }, 5, T0 + 100, s)]));
        expect(batches.flat()).toHaveLength(3);
        const perKey = await Promise.all(claimers.flatMap((s) => [claim({}, 5, T0 + 100, s), claim({}, 5, T0 + 100, s)]));
        // Four keys, one active job each: the three running ones plus one more.
        expect(perKey.flat()).toHaveLength(1);
        expect(await store.jobsInStates(["launching"])).toHaveLength(4);
      });
    });

    describe("updateAttempt", () => {
      async function launched(): Promise<Job> {
        const job = await create({ target: "docker" });
        await claim();
        return job;
      }

      it("applies the patch and round-trips the handle as JSON", async () => {
        const job = await launched();
        const patch = {
          handle: { containerId: "abc", ports: [1, 2], nested: { ok: true } },
          state: "exited" as const,
          startedAt: T0 + 2,
          endedAt: T0 + 3,
          heartbeatAt: T0 + 2,
          exitCode: 0,
          outcome: "SUCCEEDED" as const,
          reason: "done",
          result: { imageUrl: "registry/app:1" },
          log: "line 1\nline 2",
          logLines: 2,
          target: "docker-2",
        };
        const updated = await store.updateAttempt(job.id, 1, patch);
        const expected: Attempt = { jobId: job.id, attempt: 1, key: `${job.id}:1`, launchedAt: T0 + 1, ...patch };
        expect(updated).toStrictEqual(expected);
        expect(await store.getAttempt(job.id, 1)).toStrictEqual(expected);
        expect(await store.getEvents(job.id)).toHaveLength(2);
      });

      it("sets fields to null and leaves the rest", async () => {
        const job = await launched();
        await store.updateAttempt(job.id, 1, { handle: { id: 1 }, reason: "r" });
        const updated = await store.updateAttempt(job.id, 1, { handle: null });
        expect(updated).toMatchObject({ handle: null, reason: "r" });
      });

      it("writes nothing when onlyIfState does not match", async () => {
        const job = await launched();
        await store.updateAttempt(job.id, 1, { state: "exited", exitCode: 1 });
        const before = await store.getAttempt(job.id, 1);
        const eventsBefore = await store.getEvents(job.id);
        const late = await store.updateAttempt(job.id, 1, { state: "running", heartbeatAt: T0 + 50 }, { onlyIfState: ["launching", "running"], event: { kind: "attempt.heartbeat" } });
        expect(late).toBeNull();
        expect(await store.getAttempt(job.id, 1)).toStrictEqual(before);
        expect(await store.getEvents(job.id)).toStrictEqual(eventsBefore);
        const onTime = await store.updateAttempt(job.id, 1, { reason: "ok" }, { onlyIfState: ["exited"] });
        expect(onTime?.reason).toBe("ok");
      });

      it("writes an event only when asked, kind defaulting to attempt.updated", async () => {
        const job = await launched();
        await store.updateAttempt(job.id, 1, { heartbeatAt: T0 + 5 });
        expect(await store.getEvents(job.id)).toHaveLength(2);
        await store.updateAttempt(job.id, 1, { heartbeatAt: T0 + 6 }, { event: {} });
        await store.updateAttempt(job.id, 1, { heartbeatAt: T0 + 7 }, { event: { kind: "attempt.heartbeat", data: { at: T0 + 7 } } });
        const events = (await store.getEvents(job.id)).slice(2);
        expect(events).toStrictEqual([
          { seq: expect.any(Number), jobId: job.id, kind: "attempt.updated", from: null, to: null, attempt: 1, data: {}, at: expect.any(Number) },
          { seq: expect.any(Number), jobId: job.id, kind: "attempt.heartbeat", from: null, to: null, attempt: 1, data: { at: T0 + 7 }, at: expect.any(Number) },
        ]);
      });

      it("returns null for an unknown attempt", async () => {
        const job = await launched();
        expect(await store.updateAttempt(job.id, 2, { reason: "x" })).toBeNull();
        expect(await store.updateAttempt("unknown", 1, { reason: "x" })).toBeNull();
        expect(await store.getAttempt(job.id, 2)).toBeNull();
      });
    });

    describe("activeAttempts", () => {
      it("returns the current attempt of every launching or running job", async () => {
        const queued = await create({}, T0 + 10);
        const launching = await create({ target: "docker" }, T0 - 3);
        const running = await create({ target: "docker" }, T0 - 2);
        const done = await create({ target: "docker" }, T0 - 1);
        await claim({}, 3);
        await store.transition(queued.id, { from: "queued", to: "cancelled" });
        await store.transition(running.id, { from: "launching", to: "retrying", now: T0 + 2 });
        await store.transition(running.id, { from: "retrying", to: "queued", now: T0 + 3 });
        await claim({}, 10, T0 + 4);
        await store.transition(running.id, { from: "launching", to: "running", now: T0 + 5 });
        await store.transition(done.id, { from: "launching", to: "succeeded", now: T0 + 5 });

        const active = await store.activeAttempts();
        expect(active.map((a) => [a.job.id, a.job.state, a.attempt.attempt])).toEqual([
          [launching.id, "launching", 1],
          [running.id, "running", 2],
        ]);
        expect(active[1]).toStrictEqual({ job: await store.getJob(running.id), attempt: await store.getAttempt(running.id, 2) });
      });
    });

    describe("listJobs", () => {
      it("lists newest first and filters by state, type and deployment", async () => {
        const a = await create({ type: "build", deploymentId: "d1" }, T0);
        const b = await create({ type: "deploy", deploymentId: "d1" }, T0 + 1);
        const c = await create({ type: "build", deploymentId: "d2" }, T0 + 2);
        await store.transition(a.id, { from: "queued", to: "cancelled" });
        expect(ids((await store.listJobs({})).items)).toEqual([c.id, b.id, a.id]);
        expect(ids((await store.listJobs({ state: "queued" })).items)).toEqual([c.id, b.id]);
        expect(ids((await store.listJobs({ type: "build" })).items)).toEqual([c.id, a.id]);
        expect(ids((await store.listJobs({ deploymentId: "d1" })).items)).toEqual([b.id, a.id]);
        expect(ids((await store.listJobs({ deploymentId: "d1", type: "build", state: "cancelled" })).items)).toEqual([a.id]);
        expect(await store.listJobs({ type: "none" })).toStrictEqual({ items: [], nextCursor: null });
      });

      it("pages through every job exactly once, breaking ties on createdAt by id", async () => {
        const created: Job[] = [];
        for (let i = 0; i < 23; i++) created.push(await create({ type: i % 3 === 0 ? "test" : "build" }, T0 + Math.floor(i / 4)));
        const newestFirst = (jobs: Job[]) => [...jobs].sort((x, y) => y.createdAt - x.createdAt || (x.id < y.id ? 1 : -1));

        const seen = await pageAll({ limit: 5 });
        expect(seen.pages).toBe(5);
        expect(seen.ids).toEqual(ids(newestFirst(created)));

        const builds = await pageAll({ type: "build", limit: 4 });
        expect(builds.ids).toEqual(ids(newestFirst(created.filter((j) => j.type === "build"))));
      });

      it("returns no cursor when the last page is exactly full", async () => {
        for (let i = 0; i < 10; i++) await create({}, T0 + i);
        const first = await store.listJobs({ limit: 5 });
        expect(first.nextCursor).not.toBeNull();
        const second = await store.listJobs({ limit: 5, cursor: first.nextCursor! });
        expect(second.items).toHaveLength(5);
        expect(second.nextCursor).toBeNull();
      });

      it("pages 50 by default and at most 500", async () => {
        for (let i = 0; i < 501; i++) await create({}, T0 + i);
        const byDefault = await store.listJobs({});
        expect(byDefault.items).toHaveLength(50);
        const capped = await store.listJobs({ limit: 10_000 });
        expect(capped.items).toHaveLength(500);
        const rest = await store.listJobs({ limit: 10_000, cursor: capped.nextCursor! });
        expect(rest).toStrictEqual({ items: [expect.objectContaining({ createdAt: T0 })], nextCursor: null });
      });

      it("rejects a cursor it did not issue with BAD_REQUEST naming the field", async () => {
        await create();
        for (const cursor of ["", "not a cursor!", Buffer.from("no-colon").toString("base64url"), Buffer.from("x:job").toString("base64url")]) {
          await expect(store.listJobs({ cursor })).rejects.toMatchObject({ type: "BAD_REQUEST", data: { fields: [expect.objectContaining({ field: "cursor" })] } });
        }
      });

      async function pageAll(filter: { type?: string; limit: number }) {
        const out: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        for (;;) {
          const page = await store.listJobs({ ...filter, cursor });
          pages += 1;
          out.push(...ids(page.items));
          if (!page.nextCursor) break;
          cursor = page.nextCursor;
          if (pages > 100) throw new Error("pagination does not end");
        }
        return { ids: out, pages };
      }
    });

    describe("jobsInStates and countByState", () => {
      it("returns jobs in any of the states, oldest first, up to the limit", async () => {
        const a = await create({}, T0 + 2);
        const b = await create({}, T0);
        const c = await create({}, T0 + 1);
        await store.transition(c.id, { from: "queued", to: "cancelled" });
        await create({ state: "rejected" }, T0 - 1);
        expect(ids(await store.jobsInStates(["queued"]))).toEqual([b.id, a.id]);
        expect(ids(await store.jobsInStates(["cancelled", "queued"]))).toEqual([b.id, c.id, a.id]);
        expect(ids(await store.jobsInStates(["queued", "cancelled"], 2))).toEqual([b.id, c.id]);
        expect(await store.jobsInStates([])).toEqual([]);
      });

      it("counts jobs by state, type and target", async () => {
        await create({ type: "build", target: "docker" });
        await create({ type: "build", target: "docker" });
        await create({ type: "build", target: null });
        await create({ type: "deploy", target: "docker", state: "rejected" });
        const counts = await store.countByState();
        const key = (r: { state: string; type: string; target: string | null }) => `${r.state}/${r.type}/${r.target}`;
        expect([...counts].sort((x, y) => key(x).localeCompare(key(y)))).toStrictEqual([
          { state: "queued", type: "build", target: "docker", count: 2 },
          { state: "queued", type: "build", target: null, count: 1 },
          { state: "rejected", type: "deploy", target: "docker", count: 1 },
        ]);
      });
    });

    describe("the outbox", () => {
      it("reads events of all jobs in commit order after a sequence number", async () => {
        const a = await create({}, T0);
        const b = await create({}, T0 + 1);
        await store.transition(a.id, { from: "queued", to: "cancelled", now: T0 + 2 });
        const all = await store.readEvents(0, 100);
        expect(all.map((e) => [e.jobId, e.kind])).toEqual([
          [a.id, "job.created"],
          [b.id, "job.created"],
          [a.id, "job.cancelled"],
        ]);
        expect(await store.readEvents(all[0].seq, 1)).toStrictEqual([all[1]]);
        expect(await store.readEvents(all[2].seq, 10)).toEqual([]);
        expect(await store.readEvents(0, 0)).toEqual([]);
      });

      it("names the position of the newest event readEvents can return (0 before any)", async () => {
        expect(await store.lastEventSeq()).toBe(0);
        const a = await create({}, T0);
        await store.transition(a.id, { from: "queued", to: "cancelled", now: T0 + 1 });
        const all = await store.readEvents(0, 100);
        expect(await store.lastEventSeq()).toBe(all[all.length - 1].seq);
        expect(await store.readEvents(await store.lastEventSeq(), 10)).toEqual([]);
      });

      it("keeps a cursor per sink: 0 until set, then the last value set", async () => {
        expect(await store.getCursor("amqp")).toBe(0);
        await store.setCursor("amqp", 7);
        await store.setCursor("redis", 3);
        await store.setCursor("amqp", 12);
        expect(await store.getCursor("amqp")).toBe(12);
        expect(await store.getCursor("redis")).toBe(3);
      });
    });

    describe("dead letters", () => {
      const letter = (id: string, receivedAt: number) => ({
        id,
        source: "amqp:execute.queue",
        reason: "NOT_JSON",
        detail: "Unexpected token",
        body: "{ not json",
        properties: { messageId: id },
        receivedAt,
      });

      it("stores a dead letter once per id: a redelivery returns the first", async () => {
        const first = await store.addDeadLetter(letter("dl-1", T0));
        expect(first.created).toBe(true);
        expect(first.letter).toStrictEqual({ ...letter("dl-1", T0), replayedAt: null, replayCount: 0 });
        const again = await store.addDeadLetter({ ...letter("dl-1", T0 + 5), detail: "other" });
        expect(again).toStrictEqual({ letter: first.letter, created: false });
        expect(await store.getDeadLetter("dl-1")).toStrictEqual(first.letter);
        expect(await store.getDeadLetter("missing")).toBeNull();
      });

      it("lists newest first within the limit and records replays", async () => {
        await store.addDeadLetter(letter("dl-a", T0));
        await store.addDeadLetter(letter("dl-b", T0 + 1));
        await store.addDeadLetter(letter("dl-c", T0 + 2));
        expect((await store.listDeadLetters(2)).map((l) => l.id)).toEqual(["dl-c", "dl-b"]);
        const replayed = await store.markDeadLetterReplayed("dl-a", T0 + 10);
        expect(replayed).toMatchObject({ id: "dl-a", replayedAt: T0 + 10, replayCount: 1 });
        expect((await store.markDeadLetterReplayed("dl-a", T0 + 20))?.replayCount).toBe(2);
        expect(await store.markDeadLetterReplayed("missing")).toBeNull();
      });
    });

    it("closes idempotently", async () => {
      await store.close();
      await expect(store.close()).resolves.toBeUndefined();
    });
  });
}
