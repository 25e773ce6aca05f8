import { ChildProcess, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { prepareEntryPoint, startEntryPoint as startProcess } from "../support/entry-point";
import { ROOT } from "../support/orchestrator";
import { waitFor } from "../support/wait";
import { isGone } from "../support/process";

/**
 * The real entry point as a separate process, killed with SIGKILL while jobs run and
 * queue, then started again on the same data directory: nothing is lost, nothing runs twice.
 */
describe("restart while jobs run", () => {
  let orchestrator: ChildProcess | undefined;
  afterEach(() => orchestrator?.kill("SIGKILL"));

  test("kill -9 and restart: every job ends once, running workers are adopted, not relaunched", async () => {
    // Two at a time, so that some jobs are still queued when the node dies. Workers sleep
    // long enough that none ends between the snapshot and the kill, even on a busy machine.
    const { env, get, submit, healthy, dataDir } = await prepareEntryPoint({ configure: (c) => (c.limits = { global: 2 }) });
    const repo = path.join(dataDir, "repo");
    execFileSync("bash", [path.join(ROOT, "examples/create-local-repo.sh"), repo]);

    orchestrator = startProcess(env);
    await healthy();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await submit({ type: "test", deploymentId: `restart-${i}`, repository: repo, testCommand: "sleep 5" }));
    const running = await waitFor(async () => {
      const r = await get("/api/jobs?state=running");
      return r.items.length === 2 ? r.items : null;
    }, { timeout: 20_000, message: "two jobs never ran" });

    const survivors = new Map<string, number>();
    for (const r of running) survivors.set(r.id, (await get(`/api/jobs/${r.id}`)).attempts[0].handle.pid);

    orchestrator.kill("SIGKILL");
    await new Promise((resolve) => orchestrator!.once("exit", resolve));
    for (const pid of survivors.values()) expect(isGone(pid)).toBe(false); // workers outlive the node
    const pids: number[] = [];
    orchestrator = startProcess(env);
    await healthy("orchestrator did not restart");

    const finals = await waitFor(async () => {
      const jobs = await Promise.all(ids.map((id) => get(`/api/jobs/${id}`)));
      return jobs.every((j) => ["succeeded", "failed", "timed_out", "cancelled"].includes(j.job.state)) ? jobs : null;
    }, { timeout: 60_000, message: "jobs did not all finish after the restart" });

    for (const j of finals) {
      expect(j.job.state).toBe("succeeded");
      expect(j.attempts).toHaveLength(1); // adopted or launched once, never twice
      pids.push(j.attempts[0].handle.pid);
    }
    // The workers that ran through the crash were adopted: same process, not a second launch.
    for (const [id, pid] of survivors) expect(finals.find((j) => j.job.id === id).attempts[0].handle.pid).toBe(pid);
    await waitFor(() => pids.every((pid) => isGone(pid)), { timeout: 10_000, message: "a worker process outlived its job" });
  });

  test("kill -9 with jobs queued, launching, running and retrying: all end, none launched twice, limits held", async () => {
    const { env, get, submit: post, healthy: up, dataDir } = await prepareEntryPoint({
      configure: (c) => {
        c.plugins.push({ use: path.join(ROOT, "test/support/plugins/script-plugin.ts") });
        c.limits = { global: 2 };
      },
    });

    orchestrator = startProcess(env);
    await up();
    // Sample the limit all along, across the crash.
    let maxActive = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          const [l, r] = await Promise.all([get("/api/jobs?state=launching&limit=500"), get("/api/jobs?state=running&limit=500")]);
          maxActive = Math.max(maxActive, l.items.length + r.items.length);
        } catch {
          // the node is down for a moment
        }
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    })();

    const launching = await post({ type: "script", script: "0", target: "stuck", timeouts: { startTimeout: 60_000 } });
    const retrying = await post({ type: "script", script: "process.exit(1)", retry: { maxAttempts: 2, initialDelay: 5_000, jitter: "none", retryOn: ["EXIT_NONZERO"] } });
    const running = await post({ type: "script", script: "setTimeout(() => {}, 5_000)" });
    await waitFor(async () => (await get(`/api/jobs/${retrying}`)).job.state === "retrying", { message: "no job retrying" });
    await waitFor(async () => (await get(`/api/jobs/${running}`)).job.state === "running", { message: "no job running" });
    const queued = [await post({ type: "script", script: "0" }), await post({ type: "script", script: "0" })];
    const states = await Promise.all([launching, retrying, running, ...queued].map(async (id) => (await get(`/api/jobs/${id}`)).job.state));
    expect(states).toEqual(["launching", "retrying", "running", "queued", "queued"]);

    orchestrator.kill("SIGKILL");
    await new Promise((resolve) => orchestrator!.once("exit", resolve));
    orchestrator = startProcess(env);
    await up();

    const ids = [launching, retrying, running, ...queued];
    const finals = await waitFor(async () => {
      const jobs = await Promise.all(ids.map((id) => get(`/api/jobs/${id}`)));
      return jobs.every((j) => ["succeeded", "failed", "timed_out", "cancelled"].includes(j.job.state)) ? jobs : null;
    }, { timeout: 60_000, message: "jobs did not all finish after the restart" });
    sampling = false;
    await sampler;

    const byId = new Map(finals.map((j) => [j.job.id, j]));
    // The stuck target forgot its worker with the node: lost, and the default policy does not retry.
    expect(byId.get(launching).job.state).toBe("failed");
    expect(byId.get(launching).attempts[0].outcome).toBe("WORKER_LOST");
    expect(byId.get(retrying).job.state).toBe("failed");
    expect(byId.get(retrying).attempts.map((a: any) => a.exitCode)).toEqual([1, 1]);
    for (const id of [running, ...queued]) {
      expect(byId.get(id).job.state).toBe("succeeded");
      expect(byId.get(id).attempts).toHaveLength(1);
    }
    // One launch record per attempt on the process target: nothing launched twice, nothing relaunched under a new key.
    const processAttempts = finals.flatMap((j) => j.attempts).filter((a: any) => a.target === "process");
    const records = fs.readdirSync(path.join(dataDir, "data", "process")).filter((f) => f.endsWith(".json"));
    expect(records).toHaveLength(processAttempts.length);
    expect(maxActive).toBeLessThanOrEqual(2);
    await waitFor(() => processAttempts.every((a: any) => isGone(a.handle.pid)), { timeout: 10_000, message: "a worker outlived its job" });
  }, 120_000);
});
