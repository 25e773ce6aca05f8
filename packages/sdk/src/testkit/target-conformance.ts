/**
 * The launch-target conformance suite: what the orchestrator relies on from every target,
 * built-in or third-party. A target's test file calls it once:
 *
 *   import { targetConformance } from "@blacktree/sdk/testkit";
 *   targetConformance("my-target", async () => ({ target, ctx, workload, invalidWorkload, stopGraceMs, teardown }));
 *
 * It runs under Jest (it declares its own describe/it blocks) against real workers, so
 * every wait polls with a deadline and nothing sleeps a fixed time. A failing case says
 * in words which rule the target broke.
 */
import type * as JestGlobals from "@jest/globals";
import type { LaunchRequest, LaunchTarget, PluginContext, TargetHandle, TargetStatus, Workload } from "../plugin";
import { poll } from "./poll";

/**
 * What the suite asks the target to run; `setup().workload(kind)` returns a workload that:
 * - `exit0`: prints the line `conformance` and exits 0;
 * - `exit3`: exits 3;
 * - `sleep`: runs for minutes, and ends promptly on SIGTERM (or the target's polite stop);
 * - `ignoreTerm`: ignores SIGTERM, **then** prints the line `ready`, then runs for minutes
 *   (only a kill ends it). The suite stops it only once `ready` is in its logs: a SIGTERM
 *   that arrives before the worker ignores it ends it at once, and proves nothing.
 */
export type WorkloadKind = "exit0" | "exit3" | "sleep" | "ignoreTerm";

/** The line an `ignoreTerm` worker prints once it ignores SIGTERM. */
export const READY_LINE = "ready";

/** Slack over the stop grace a target may take to stop a worker that ignores SIGTERM. */
export const STOP_SLACK_MS = 5_000;

export interface ConformanceSetup<H extends TargetHandle = TargetHandle> {
  /** A target already `init`ed with its config. */
  target: LaunchTarget<any, H>;
  ctx: PluginContext;
  workload(kind: WorkloadKind): Workload;
  /** A workload this target must refuse at launch as non-retryable (missing executable, missing image, …). */
  invalidWorkload(): Workload;
  /** The target's stop grace (SIGTERM → kill); `ignoreTerm` must be stopped no sooner than it, and within it plus 5 s. */
  stopGraceMs: number;
  /**
   * Optional: how many workers exist for a key, counted outside the target (e.g. `docker ps`
   * by label), to prove a repeated launch never made a second one.
   */
  countWorkers?(key: string): Promise<number>;
  /**
   * Optional, for targets without `logs`: whether the `ignoreTerm` worker of this handle
   * ignores SIGTERM yet. Without it (and without `logs`) a running worker counts as ready.
   */
  ready?(handle: H): Promise<boolean>;
  /** Stops whatever the suite left running and closes the target. */
  teardown(): Promise<void>;
}

export interface ConformanceOptions {
  /** How long a worker may take to start, exit or be seen stopped (default 30 s): real engines are slow on busy machines. */
  deadlineMs?: number;
}

/** A rule the target broke: the rule in words first, then the expectation's own account. */
export class ConformanceFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConformanceFailure";
  }
}

/** Registers the suite as `describe("<name> target conformance")`. */
export function targetConformance<H extends TargetHandle>(name: string, setup: () => Promise<ConformanceSetup<H>>, opts: ConformanceOptions = {}): void {
  // Required here, not at the top: the rest of the testkit (poll, runTaskType) works under any runner.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { afterAll, beforeAll, describe, expect, it } = require("@jest/globals") as typeof JestGlobals;
  const deadline = opts.deadlineMs ?? 30_000;
  const testTimeout = deadline * 3;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  let s: ConformanceSetup<H>;
  let target: LaunchTarget<any, H>;
  let ctx: PluginContext;

  /** Runs an expectation; a failure names the rule broken, then Jest's own account of it. */
  const rule = async (text: string, check: () => unknown): Promise<void> => {
    try {
      await check();
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new ConformanceFailure(`${name}: ${text}\n\n${detail}`);
    }
  };
  const key = (what: string) => `job_conf${what}${run}:1`;
  const request = (k: string, workload: Workload): LaunchRequest => {
    const [jobId, attempt] = k.split(":");
    return { jobId, attempt: Number(attempt), key: k, workload, labels: { "blacktree.job": jobId, "blacktree.attempt": attempt, "blacktree.deployment": "conformance", "blacktree.type": "conformance" } };
  };
  const launch = (k: string, kind: WorkloadKind) => target.launch(request(k, s.workload(kind)), ctx);
  const inspectOne = async (handle: TargetHandle): Promise<TargetStatus | undefined> => (await target.inspect([handle as H], ctx)).find((st) => st.key === handle.key);
  const until = <T>(what: string, fn: () => Promise<T>) => poll(fn, { timeout: deadline, message: `${name}: ${what}` });
  const exited = (handle: TargetHandle) =>
    until(`inspect must report ${handle.key} exited once its worker ended`, async () => {
      const st = await inspectOne(handle);
      return st?.state === "exited" ? st : null;
    });
  const running = (handle: TargetHandle) => until(`inspect must report ${handle.key} running once its worker started`, async () => (await inspectOne(handle))?.state === "running");
  const logLines = async (handle: H): Promise<string[]> => {
    const lines: string[] = [];
    for await (const line of target.logs!(handle, ctx)) lines.push(line);
    return lines;
  };
  const ready = async (handle: H): Promise<void> => {
    await running(handle);
    if (s.ready) await until(`the ignoreTerm worker of ${handle.key} must become ready (setup.ready)`, () => s.ready!(handle));
    else if (target.logs) await until(`the ignoreTerm worker of ${handle.key} must print '${READY_LINE}' once it ignores SIGTERM`, async () => (await logLines(handle)).includes(READY_LINE));
  };

  describe(`${name} target conformance`, () => {
    beforeAll(async () => {
      s = await setup();
      target = s.target;
      ctx = s.ctx;
    }, testTimeout);
    afterAll(async () => {
      await s?.teardown();
    }, testTimeout);

    it("reports exited with the worker's exit code (0 and 3), from one batched inspect; a finished key is never relaunched", async () => {
      const zero = await launch(key("zero"), "exit0");
      const three = await launch(key("three"), "exit3");
      await rule("launch must return a handle carrying the launch key", () => {
        expect(zero.key).toBe(key("zero"));
        expect(three.key).toBe(key("three"));
      });
      await rule("a handle must be plain JSON: it is stored and crosses nodes", () => expect(JSON.parse(JSON.stringify(zero))).toEqual(zero));
      await exited(zero);
      await exited(three);
      const statuses = await target.inspect([three, zero], ctx);
      await rule("one inspect call must answer every handle it is given, each `exited` with its worker's exit code (0 and 3)", () => {
        expect(statuses).toHaveLength(2);
        expect(statuses).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ key: key("zero"), state: "exited", exitCode: 0 }),
            expect.objectContaining({ key: key("three"), state: "exited", exitCode: 3 }),
          ]),
        );
      });
      if (target.list) {
        const listed = await target.list(ctx);
        await rule("list() must not name a finished worker (there is nothing to reap)", () => expect(listed).not.toContain(key("zero")));
      }
      const again = await launch(key("zero"), "exit0");
      await rule("launching a finished key again must return its handle, not run the worker again", () => expect(again).toEqual(zero));
      const after = await inspectOne(zero);
      await rule("a finished key must stay exited with its exit code after a repeated launch", () => expect(after).toEqual(expect.objectContaining({ state: "exited", exitCode: 0 })));
      if (s.countWorkers) {
        const n = await s.countWorkers(key("zero"));
        await rule("a repeated launch must not make a second worker (countWorkers)", () => expect(n).toBe(1));
      }
      if (target.logs) {
        const lines = await logLines(zero);
        await rule("logs() must hold the worker's output, and it ran once: the line `conformance` appears exactly once", () => expect(lines.filter((l) => l === "conformance")).toHaveLength(1));
      }
    }, testTimeout);

    it("launches once per key: concurrent and repeated launches return the same worker", async () => {
      const k = key("once");
      const handles = await Promise.all([launch(k, "sleep"), launch(k, "sleep"), launch(k, "sleep")]);
      await rule("three concurrent launches of one key must return the same handle", () => {
        for (const h of handles) expect(h).toEqual(handles[0]);
      });
      await running(handles[0]);
      const again = await launch(k, "sleep");
      await rule("launching a running key again must return its handle", () => expect(again).toEqual(handles[0]));
      if (target.list) {
        const listed = await target.list(ctx);
        await rule("list() must name a key once, however often it was launched", () => expect(listed.filter((x) => x === k)).toHaveLength(1));
      }
      if (s.countWorkers) {
        const n = await s.countWorkers(k);
        await rule("concurrent launches of one key must make one worker (countWorkers)", () => expect(n).toBe(1));
      }
      await target.stop(handles[0], "conformance: done", ctx);
    }, testTimeout);

    it("answers a batched inspect for running and unknown keys, matched by key", async () => {
      const k = key("batch");
      const handle = await launch(k, "sleep");
      await running(handle);
      const unknown = { key: key("never") } as H;
      const statuses = await target.inspect([unknown, handle], ctx);
      await rule("one inspect call must answer `running` for a running worker and `lost` with a reason for a key it never launched", () => {
        expect(statuses).toHaveLength(2);
        expect(statuses.find((st) => st.key === k)).toEqual(expect.objectContaining({ state: "running" }));
        expect(statuses.find((st) => st.key === unknown.key)).toEqual(expect.objectContaining({ state: "lost", reason: expect.any(String) }));
      });
      const none = await target.inspect([], ctx);
      await rule("inspect([]) must answer []", () => expect(none).toEqual([]));
      await target.stop(handle, "conformance: done", ctx);
    }, testTimeout);

    it("lists its own running workers by key, and works from the key alone (after a restart, for orphans)", async () => {
      const k = key("listed");
      const handle = await launch(k, "sleep");
      await running(handle);
      if (target.list) {
        const listed = await target.list(ctx);
        await rule("list() must name a running worker's key", () => expect(listed).toContain(k));
      }
      // The lifecycle reaps orphans with `{ key }` handles: inspect and stop must work from it.
      const bare = await inspectOne({ key: k });
      await rule("inspect must work from a bare `{ key }` handle (orphans, restarts)", () => expect(bare).toEqual(expect.objectContaining({ state: "running" })));
      await target.stop({ key: k } as H, "conformance: orphan", ctx);
      const after = await inspectOne(handle);
      await rule("stop must work from a bare `{ key }` handle: once it returns, the worker is neither running nor pending", () => {
        expect(after?.state).not.toBe("running");
        expect(after?.state).not.toBe("pending");
      });
      if (target.list) {
        const listed = await target.list(ctx);
        await rule("list() must not name a stopped worker", () => expect(listed).not.toContain(k));
      }
    }, testTimeout);

    it("stops a worker that ignores SIGTERM after the grace and within grace + 5 s, idempotently", async () => {
      const handle = await launch(key("stubborn"), "ignoreTerm");
      await ready(handle);
      const started = Date.now();
      await target.stop(handle, "conformance: cancelled", ctx);
      const took = Date.now() - started;
      const grace = s.stopGraceMs;
      await rule(`stop must end a worker that ignores SIGTERM within grace + ${STOP_SLACK_MS / 1000} s (grace ${grace} ms): it took ${took} ms`, () =>
        expect(took).toBeLessThanOrEqual(grace + STOP_SLACK_MS),
      );
      await rule(
        `stop must give a worker that ignores SIGTERM its grace (${grace} ms) before killing it: it ended after ${took} ms. ` +
          `(A worker that prints '${READY_LINE}' before it ignores SIGTERM ends this early too.)`,
        () => expect(took).toBeGreaterThanOrEqual(Math.max(0, grace - 50)),
      );
      const st = await inspectOne(handle);
      await rule("once stop returns, inspect must report the worker ended (exited or lost)", () => expect(["exited", "lost"]).toContain(st?.state));
      await rule("stop must be idempotent: stopping a stopped worker, or a key never launched, resolves", async () => {
        await expect(target.stop(handle, "conformance: again", ctx)).resolves.toBeUndefined();
        await expect(target.stop({ key: key("unknown") } as H, "conformance: unknown", ctx)).resolves.toBeUndefined();
      });
    }, testTimeout);

    it("refuses an invalid workload with a coded, non-retryable error", async () => {
      const err = await target.launch(request(key("invalid"), s.invalidWorkload()), ctx).then(
        () => null,
        (e: unknown) => e,
      );
      await rule("launch must refuse an invalid workload with an error carrying `type`, `message` and `retryable: false`", () =>
        expect(err).toEqual(expect.objectContaining({ type: expect.any(String), retryable: false, message: expect.any(String) })),
      );
      if (target.list) {
        const listed = await target.list(ctx);
        await rule("a refused launch must leave no worker behind", () => expect(listed).not.toContain(key("invalid")));
      }
    }, testTimeout);
  });
}
