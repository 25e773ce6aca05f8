/**
 * The launch-target conformance suite: what the orchestrator relies on from every target,
 * built-in or third-party. A target's test file calls it once:
 *
 *   import { targetConformance } from "blacktree-orchestrator/testkit";
 *   targetConformance("my-target", async () => ({ target, ctx, workload, teardown }));
 *
 * It runs under Jest (it declares its own describe/it blocks) against real workers, so
 * every wait polls with a deadline and nothing sleeps a fixed time.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import type { LaunchRequest, LaunchTarget, PluginContext, TargetHandle, TargetStatus, Workload } from "../plugins/sdk";
import { poll } from "./poll";

/**
 * What the suite asks the target to run; `setup().workload(kind)` returns a workload that:
 * - `exit0`: prints the line `conformance` and exits 0;
 * - `exit3`: exits 3;
 * - `sleep`: runs for minutes, and ends promptly on SIGTERM (or the target's polite stop);
 * - `ignoreTerm`: runs for minutes and ignores SIGTERM (only a kill ends it).
 */
export type WorkloadKind = "exit0" | "exit3" | "sleep" | "ignoreTerm";

export interface ConformanceSetup<H extends TargetHandle = TargetHandle> {
  /** A target already `init`ed with its config. */
  target: LaunchTarget<any, H>;
  ctx: PluginContext;
  workload(kind: WorkloadKind): Workload;
  /** A workload this target must refuse at launch as non-retryable (missing executable, missing image, …). */
  invalidWorkload(): Workload;
  /** The target's stop grace (SIGTERM → kill); `ignoreTerm` must be stopped within it plus slack. */
  stopGraceMs: number;
  /**
   * Optional: how many workers exist for a key, counted outside the target (e.g. `docker ps`
   * by label), to prove a repeated launch never made a second one.
   */
  countWorkers?(key: string): Promise<number>;
  /** Stops whatever the suite left running and closes the target. */
  teardown(): Promise<void>;
}

export interface ConformanceOptions {
  /** How long a worker may take to start, exit or be seen stopped (default 30 s): real engines are slow on busy machines. */
  deadlineMs?: number;
}

/** Registers the suite as `describe("<name> target conformance")`. */
export function targetConformance<H extends TargetHandle>(
  name: string,
  setup: () => Promise<ConformanceSetup<H>>,
  opts: ConformanceOptions = {},
): void {
  const deadline = opts.deadlineMs ?? 30_000;
  const testTimeout = deadline * 3;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  let s: ConformanceSetup<H>;
  let target: LaunchTarget<any, H>;
  let ctx: PluginContext;

  const key = (what: string) => `job_conf${what}${run}:1`;
  const request = (k: string, workload: Workload): LaunchRequest => {
    const [jobId, attempt] = k.split(":");
    return { jobId, attempt: Number(attempt), key: k, workload, labels: { "blacktree.job": jobId, "blacktree.attempt": attempt, "blacktree.deployment": "conformance", "blacktree.type": "conformance" } };
  };
  const launch = (k: string, kind: WorkloadKind) => target.launch(request(k, s.workload(kind)), ctx);
  const inspectOne = async (handle: TargetHandle): Promise<TargetStatus | undefined> => (await target.inspect([handle as H], ctx)).find((st) => st.key === handle.key);
  const until = <T>(what: string, fn: () => Promise<T>) => poll(fn, { timeout: deadline, message: `${name}: ${what}` });
  const exited = (handle: TargetHandle) =>
    until(`${handle.key} exited`, async () => {
      const st = await inspectOne(handle);
      return st?.state === "exited" ? st : null;
    });
  const running = (handle: TargetHandle) => until(`${handle.key} running`, async () => (await inspectOne(handle))?.state === "running");

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
      expect(zero.key).toBe(key("zero"));
      expect(three.key).toBe(key("three"));
      expect(JSON.parse(JSON.stringify(zero))).toEqual(zero); // handles are stored and cross nodes: plain JSON
      await exited(zero);
      await exited(three);
      const statuses = await target.inspect([three, zero], ctx);
      expect(statuses).toHaveLength(2);
      expect(statuses).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ key: key("zero"), state: "exited", exitCode: 0 }),
          expect.objectContaining({ key: key("three"), state: "exited", exitCode: 3 }),
        ]),
      );
      // A finished worker is not listed (nothing to reap), and its key stays launched: asking again never runs it twice.
      if (target.list) expect(await target.list(ctx)).not.toContain(key("zero"));
      expect(await launch(key("zero"), "exit0")).toEqual(zero);
      expect(await inspectOne(zero)).toEqual(expect.objectContaining({ state: "exited", exitCode: 0 }));
      if (s.countWorkers) expect(await s.countWorkers(key("zero"))).toBe(1);
      if (target.logs) {
        const lines: string[] = [];
        for await (const line of target.logs(zero, ctx)) lines.push(line);
        expect(lines.filter((l) => l === "conformance")).toHaveLength(1); // printed once: it ran once
      }
    }, testTimeout);

    it("launches once per key: concurrent and repeated launches return the same worker", async () => {
      const k = key("once");
      const handles = await Promise.all([launch(k, "sleep"), launch(k, "sleep"), launch(k, "sleep")]);
      for (const h of handles) expect(h).toEqual(handles[0]);
      await running(handles[0]);
      expect(await launch(k, "sleep")).toEqual(handles[0]);
      if (target.list) expect((await target.list(ctx)).filter((x) => x === k)).toHaveLength(1);
      if (s.countWorkers) expect(await s.countWorkers(k)).toBe(1);
      await target.stop(handles[0], "conformance: done", ctx);
    }, testTimeout);

    it("answers a batched inspect for running and unknown keys, matched by key", async () => {
      const k = key("batch");
      const handle = await launch(k, "sleep");
      await running(handle);
      const unknown = { key: key("never") } as H;
      const statuses = await target.inspect([unknown, handle], ctx);
      expect(statuses).toHaveLength(2);
      expect(statuses.find((st) => st.key === k)).toEqual(expect.objectContaining({ state: "running" }));
      expect(statuses.find((st) => st.key === unknown.key)).toEqual(expect.objectContaining({ state: "lost", reason: expect.any(String) }));
      expect(await target.inspect([], ctx)).toEqual([]);
      await target.stop(handle, "conformance: done", ctx);
    }, testTimeout);

    it("lists its own running workers by key, and works from the key alone (after a restart, for orphans)", async () => {
      const k = key("listed");
      const handle = await launch(k, "sleep");
      await running(handle);
      if (target.list) expect(await target.list(ctx)).toContain(k);
      // The lifecycle reaps orphans with `{ key }` handles: inspect and stop must work from it.
      expect(await inspectOne({ key: k })).toEqual(expect.objectContaining({ state: "running" }));
      await target.stop({ key: k } as H, "conformance: orphan", ctx);
      const after = await inspectOne(handle);
      expect(after?.state).not.toBe("running");
      expect(after?.state).not.toBe("pending");
      if (target.list) expect(await target.list(ctx)).not.toContain(k);
    }, testTimeout);

    it("stops a worker that ignores SIGTERM within the grace (plus slack), idempotently", async () => {
      const handle = await launch(key("stubborn"), "ignoreTerm");
      await running(handle);
      const started = Date.now();
      await target.stop(handle, "conformance: cancelled", ctx);
      expect(Date.now() - started).toBeLessThan(s.stopGraceMs + deadline);
      const st = await inspectOne(handle);
      expect(["exited", "lost"]).toContain(st?.state);
      await expect(target.stop(handle, "conformance: again", ctx)).resolves.toBeUndefined();
      await expect(target.stop({ key: key("unknown") } as H, "conformance: unknown", ctx)).resolves.toBeUndefined();
    }, testTimeout);

    it("refuses an invalid workload with a coded, non-retryable error", async () => {
      const err = await target.launch(request(key("invalid"), s.invalidWorkload()), ctx).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toEqual(expect.objectContaining({ type: expect.any(String), retryable: false, message: expect.any(String) }));
      if (target.list) expect(await target.list(ctx)).not.toContain(key("invalid"));
    }, testTimeout);
  });
}
