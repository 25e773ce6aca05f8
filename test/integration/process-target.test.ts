import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Validator from "fastest-validator";
import type { LaunchRequest, PluginContext, TargetStatus, Workload } from "../../lib/plugins/sdk";
import processPlugin, { createProcessTarget, type ProcessHandle, type ProcessTargetConfig } from "../../plugins/targets/process";
import { waitFor } from "../support/wait";
import { isGone, procState } from "../support/process";

/** Real child processes under the real wrapper; everything is polled with a deadline. */

type Target = ReturnType<typeof createProcessTarget>;

const node = (script: string, ...args: string[]) => [process.execPath, "-e", script, ...args];

/** Prints its pid, then exits with argv[2] once the file argv[1] exists. */
const GATED = `
const fs = require("fs");
const [gate, code] = process.argv.slice(1);
console.log("pid " + process.pid);
const timer = setInterval(() => { if (fs.existsSync(gate)) { clearInterval(timer); process.exit(Number(code)); } }, 20);`;

/** Prints its pid once its SIGTERM handler is in place, then never ends by itself. */
const IGNORES_SIGTERM = `
process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
console.log("pid " + process.pid);
setInterval(() => undefined, 1000);`;

let dataDir: string;
let ctx: PluginContext;
let targets: Target[];
let launched: ProcessHandle[];

function context(dir: string): PluginContext {
  const quiet = () => undefined;
  return { logger: { info: quiet, warn: quiet, error: quiet, debug: quiet }, dataDir: dir, mode: "development", policy: {} };
}

async function newTarget(config: ProcessTargetConfig = {}): Promise<Target> {
  const target = createProcessTarget();
  await target.init({ stopGraceMs: 2_000, ...config }, ctx);
  targets.push(target);
  return target;
}

function request(key: string, command: string[], env: Workload["env"] = {}): LaunchRequest {
  const [jobId, attempt] = key.split(":");
  return { jobId, attempt: Number(attempt ?? 1), key, workload: { command, env }, labels: {} };
}

async function launch(target: Target, key: string, command: string[], env: Workload["env"] = {}): Promise<ProcessHandle> {
  const handle = await target.launch(request(key, command, env), ctx);
  launched.push(handle);
  return handle;
}

async function status(target: Target, handle: ProcessHandle): Promise<TargetStatus> {
  const [s] = await target.inspect([handle], ctx);
  return s;
}

async function logLines(target: Target, handle: ProcessHandle): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of target.logs!(handle, ctx)) lines.push(line);
  return lines;
}

/** The worker's own pid (the handle's pid is its wrapper's), from its first log line. */
async function workerPid(target: Target, handle: ProcessHandle): Promise<number> {
  const line = await waitFor(async () => (await logLines(target, handle)).find((l) => l.startsWith("pid ")), { message: "worker printed its pid" });
  return Number(line.slice(4));
}

/** Process groups holding a process with `marker` in its argv: one per wrapper launched. */
function groupsWithArg(marker: string): Set<number> {
  const groups = new Set<number>();
  for (const name of fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      if (!fs.readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").includes(marker)) continue;
      if (procState(Number(name)) === "Z") continue;
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      groups.add(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]));
    } catch {
      // ended while we looked
    }
  }
  return groups;
}

const gatePath = (name: string) => path.join(dataDir, `${name}.gate`);
const open = (gate: string) => fs.writeFileSync(gate, "");

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-process-target-"));
  ctx = context(dataDir);
  targets = [];
  launched = [];
});

afterEach(async () => {
  for (const handle of launched) {
    try {
      if (handle.pid > 1) process.kill(-handle.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const target of targets) await target.close?.();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("process target", () => {
  it("is a plugin with one target named process, whose config schema fills in the defaults", () => {
    expect(processPlugin.name).toBe("process");
    expect(processPlugin.apiVersion).toBe("^1.0.0");
    const target = processPlugin.targets![0]();
    expect(target.name).toBe("process");
    const check = new Validator().compile(target.configSchema);
    const config: Record<string, unknown> = {};
    expect(check(config)).toBe(true);
    expect(config).toEqual({ stopGraceMs: 5000, logMaxBytes: 262144, logFileMaxBytes: 10 * 1024 * 1024, retentionMs: 3_600_000 });
    expect(check({ stopGraceMS: 10 })).not.toBe(true);
  });

  it("creates its stateDir on init", async () => {
    const stateDir = path.join(dataDir, "nested", "state");
    await newTarget({ stateDir });
    expect(fs.statSync(stateDir).isDirectory()).toBe(true);
    await newTarget();
    expect(fs.statSync(path.join(dataDir, "process")).isDirectory()).toBe(true);
  });

  it("reports a worker running, then exited with its exit code (0 and 3)", async () => {
    const target = await newTarget();
    const gate = gatePath("zero");
    const zero = await launch(target, "job_zero:1", node(GATED, gate, "0"));
    const three = await launch(target, "job_three:1", node("process.exit(3)"));
    expect(zero).toEqual({ key: "job_zero:1", pid: expect.any(Number), startTime: expect.any(Number) });

    await workerPid(target, zero);
    expect(await status(target, zero)).toEqual({ key: "job_zero:1", state: "running" });
    await waitFor(async () => (await status(target, three)).state === "exited", { message: "exit 3 recorded" });
    open(gate);
    await waitFor(async () => (await status(target, zero)).state === "exited", { message: "exit 0 recorded" });

    const statuses = await target.inspect([three, zero], ctx);
    expect(statuses).toEqual(
      expect.arrayContaining([
        { key: "job_zero:1", state: "exited", exitCode: 0 },
        { key: "job_three:1", state: "exited", exitCode: 3 },
      ]),
    );
  });

  it("refuses a workload without a command, or whose executable does not exist, as non-retryable", async () => {
    const target = await newTarget();
    await expect(target.launch(request("job_empty:1", []), ctx)).rejects.toMatchObject({ type: "LAUNCH_FAILED", retryable: false });
    await expect(target.launch({ ...request("job_none:1", []), workload: { env: {} } }, ctx)).rejects.toMatchObject({
      type: "LAUNCH_FAILED",
      retryable: false,
    });
    await expect(target.launch(request("job_enoent:1", ["/nonexistent/blacktree-worker"]), ctx)).rejects.toMatchObject({
      type: "LAUNCH_FAILED",
      retryable: false,
      message: expect.stringContaining('"/nonexistent/blacktree-worker" not found'),
    });
    await expect(target.launch(request("job_enoent:2", ["no-such-command-blacktree"]), ctx)).rejects.toMatchObject({ type: "LAUNCH_FAILED" });
    expect(await target.list!(ctx)).toEqual([]);
  });

  it("launches one worker per key, across concurrent calls and target instances on one stateDir", async () => {
    const first = await newTarget();
    const second = await newTarget();
    const marker = `marker-${process.pid}-${Date.now()}`;
    const gate = gatePath("once");
    const command = node(GATED, gate, "0", marker);

    const handles = await Promise.all([
      launch(first, "job_once:1", command),
      launch(first, "job_once:1", command),
      launch(second, "job_once:1", command),
    ]);
    expect(new Set(handles.map((h) => h.pid)).size).toBe(1);
    await workerPid(first, handles[0]);
    expect(groupsWithArg(marker)).toEqual(new Set([handles[0].pid]));

    // A "restarted" orchestrator launching the same key gets the same worker back.
    const restarted = await newTarget();
    expect(await launch(restarted, "job_once:1", command)).toEqual(handles[0]);
    expect(groupsWithArg(marker).size).toBe(1);

    open(gate);
    await waitFor(async () => (await status(restarted, handles[0])).state === "exited");
    // Even after it ended, the key stays launched: no second worker.
    expect(await launch(restarted, "job_once:1", command)).toEqual(handles[0]);
    await waitFor(() => groupsWithArg(marker).size === 0, { message: "the worker and its wrapper ended" });
  });

  it("recovers a launch whose launcher died before writing the launch record", async () => {
    const stateDir = path.join(dataDir, "process");
    const target = await newTarget();
    const gate = gatePath("half");
    const handle = await launch(target, "job_half:1", node(GATED, gate, "0"));
    await workerPid(target, handle);
    // What a crash between spawn and record leaves: the worker, a claim by a dead launcher, no record.
    const deadLauncher = JSON.stringify({ pid: 2 ** 22 + 1, startTime: 1 });
    fs.rmSync(path.join(stateDir, "job_half.3a1.json"));
    fs.writeFileSync(path.join(stateDir, "job_half.3a1.claim"), deadLauncher);

    const restarted = await newTarget();
    expect(await launch(restarted, "job_half:1", node(GATED, gate, "0"))).toEqual(handle);
    expect(fs.existsSync(path.join(stateDir, "job_half.3a1.claim"))).toBe(false);

    // Nothing had been started yet: the next launch starts the worker.
    fs.writeFileSync(path.join(stateDir, "job_fresh.3a1.claim"), deadLauncher);
    const fresh = await launch(restarted, "job_fresh:1", node("process.exit(5)"));
    expect(await waitFor(async () => {
      const s = await status(restarted, fresh);
      return s.state === "exited" ? s : null;
    })).toEqual({ key: "job_fresh:1", state: "exited", exitCode: 5 });
    open(gate);
  });

  it("re-adopts a worker that outlives a restart, and later reads its exit code", async () => {
    const before = await newTarget();
    const gate = gatePath("adopt");
    const handle = await launch(before, "job_adopt:1", node(GATED, gate, "7"));
    await workerPid(before, handle);
    await before.close!();

    const after = await newTarget();
    expect(await status(after, handle)).toEqual({ key: "job_adopt:1", state: "running" });
    expect(await after.list!(ctx)).toEqual(["job_adopt:1"]);

    open(gate);
    expect(await waitFor(async () => {
      const s = await status(after, handle);
      return s.state === "exited" ? s : null;
    })).toEqual({ key: "job_adopt:1", state: "exited", exitCode: 7 });
    expect(await after.list!(ctx)).toEqual([]);
  });

  it("stops a worker that ignores SIGTERM with SIGKILL after the grace, leaving no process, and records 137", async () => {
    const graceMs = 300;
    const target = await newTarget({ stopGraceMs: graceMs });
    const handle = await launch(target, "job_stubborn:1", node(IGNORES_SIGTERM));
    const pid = await workerPid(target, handle);

    const started = Date.now();
    await target.stop(handle, "cancelled by test", ctx);
    const elapsed = Date.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(graceMs);
    expect(elapsed).toBeLessThan(graceMs + 3_000);
    expect(isGone(pid)).toBe(true);
    expect(isGone(handle.pid)).toBe(true);
    expect(await logLines(target, handle)).toContain("ignoring SIGTERM");
    expect(await status(target, handle)).toEqual({ key: "job_stubborn:1", state: "exited", exitCode: 137 });
    await expect(target.stop(handle, "again", ctx)).resolves.toBeUndefined();
  });

  it("stops a worker that honours SIGTERM without waiting out the grace, and records 143", async () => {
    const target = await newTarget({ stopGraceMs: 30_000 });
    const handle = await launch(target, "job_polite:1", node(GATED, gatePath("never"), "0"));
    const pid = await workerPid(target, handle);

    const started = Date.now();
    await target.stop(handle, "cancelled by test", ctx);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(isGone(pid)).toBe(true);
    expect(await status(target, handle)).toEqual({ key: "job_polite:1", state: "exited", exitCode: 143 });
  });

  it("treats stopping a finished or unknown worker as done", async () => {
    const target = await newTarget();
    const handle = await launch(target, "job_done:1", node("process.exit(0)"));
    await waitFor(async () => (await status(target, handle)).state === "exited");
    await expect(target.stop(handle, "late", ctx)).resolves.toBeUndefined();
    expect(await status(target, handle)).toEqual({ key: "job_done:1", state: "exited", exitCode: 0 });
    await expect(target.stop({ key: "job_unknown:1", pid: 0, startTime: 0 }, "unknown", ctx)).resolves.toBeUndefined();
  });

  it("reports lost when the worker and its wrapper were killed, and for keys it never launched", async () => {
    const target = await newTarget();
    const handle = await launch(target, "job_lost:1", node(GATED, gatePath("never"), "0"));
    const pid = await workerPid(target, handle);
    process.kill(-handle.pid, "SIGKILL");

    await waitFor(() => isGone(pid) && isGone(handle.pid));
    expect(await status(target, handle)).toEqual({ key: "job_lost:1", state: "lost", reason: "process gone without an exit status" });
    expect(await status(target, { key: "job_never:1", pid: 4242, startTime: 1 })).toMatchObject({ key: "job_never:1", state: "lost" });
    expect(await target.list!(ctx)).toEqual([]);
  });

  it("gives the worker only PATH, HOME, LANG, TMPDIR and the workload's env", async () => {
    process.env.BLACKTREE_TEST_SECRET = "do-not-leak";
    try {
      const target = await newTarget();
      const handle = await launch(target, "job_env:1", node("console.log(JSON.stringify(process.env))"), { WORKLOAD_VAR: "from-workload" });
      await waitFor(async () => (await status(target, handle)).state === "exited");
      const env = JSON.parse((await logLines(target, handle))[0]) as Record<string, string>;

      expect(env.BLACKTREE_TEST_SECRET).toBeUndefined();
      expect(env.WORKLOAD_VAR).toBe("from-workload");
      expect(env.PATH).toBe(process.env.PATH);
      // PWD is the shell's own addition: it names the working directory, nothing more.
      const allowed = ["PATH", "HOME", "LANG", "TMPDIR", "WORKLOAD_VAR", "PWD"];
      expect(Object.keys(env).filter((name) => !allowed.includes(name))).toEqual([]);
    } finally {
      delete process.env.BLACKTREE_TEST_SECRET;
    }
  });

  it("returns only whole lines from the last logMaxBytes of the log", async () => {
    const logMaxBytes = 1024;
    const target = await newTarget({ logMaxBytes });
    const handle = await launch(target, "job_chatty:1", node('for (let i = 0; i < 2000; i++) console.log("line " + i);'));
    await waitFor(async () => (await status(target, handle)).state === "exited");

    const lines = await logLines(target, handle);
    expect(Buffer.byteLength(lines.join("\n"))).toBeLessThanOrEqual(logMaxBytes);
    expect(lines.length).toBeGreaterThan(50);
    expect(lines[lines.length - 1]).toBe("line 1999");
    for (const line of lines) expect(line).toMatch(/^line \d+$/);
  });

  it("cuts a running worker's log file down to its tail once it passes logFileMaxBytes", async () => {
    const target = await newTarget({ logMaxBytes: 1024, logFileMaxBytes: 8192 });
    const gate = gatePath("flood");
    const flood = `
const fs = require("fs");
for (let i = 0; i < 5000; i++) console.log("flood " + i);
console.log("flood done");
const timer = setInterval(() => { if (fs.existsSync(${JSON.stringify(gate)})) { clearInterval(timer); console.log("after the cut"); process.exit(0); } }, 20);`;
    const handle = await launch(target, "job_flood:1", node(flood));
    const logFile = path.join(dataDir, "process", "job_flood.3a1.log");

    await waitFor(() => fs.existsSync(logFile) && fs.readFileSync(logFile, "utf8").includes("flood done"));
    // 5000 lines are ~50 KB; inspect (or the cap timer, if it came first) cuts the file to its tail.
    expect(await status(target, handle)).toEqual({ key: "job_flood:1", state: "running" });
    expect(fs.statSync(logFile).size).toBeLessThanOrEqual(8192);
    expect(fs.readFileSync(logFile, "utf8")).toMatch(/^\[blacktree\] the log went over 8192 bytes; older output was dropped\n/);

    open(gate);
    await waitFor(async () => (await status(target, handle)).state === "exited");
    const lines = await logLines(target, handle);
    expect(lines.slice(-2)).toEqual(["flood done", "after the cut"]);
    expect(fs.readFileSync(logFile, "utf8")).not.toContain("\0"); // appends landed at the new end, no hole
  });
});
