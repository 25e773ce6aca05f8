import fs from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { blacktreeError } from "@blacktree/sdk";
import type { LaunchRequest, LaunchTarget, PluginContext, TargetHandle, TargetStatus } from "@blacktree/sdk";
import { processTargetConfigSchema, resolveSettings, type ProcessTargetConfig, type ProcessTargetSettings } from "./config";
import { claimHolderAlive, releaseClaim, takeOverClaim, tryClaim } from "./launch-claim";
import { capLogFile, tailLines } from "./log-file";
import { currentBootId, findGroupLeaderWithArg, isSameProcessAlive, livingGroupMembers, readProcStat, signalGroup } from "./proc";
import { spawnWorker } from "./spawn-worker";
import {
  listRecordFiles,
  readExitCode,
  readRecord,
  workerFiles,
  writeFileIfAbsent,
  writeRecord,
  type LaunchRecord,
  type WorkerFiles,
} from "./state-files";
import { workerEnv } from "./worker-env";
import { hostWorkerCommand } from "../../workers/host-command";

export interface ProcessHandle extends TargetHandle {
  key: string;
  /** The wrapper: the worker's parent and its process group's id. */
  pid: number;
  startTime: number;
}

/** How long a launch waits for another live launcher of the same key to finish. */
const CLAIM_WAIT_MS = 10_000;
const POLL_MS = 50;
/** After SIGKILL the kernel needs a moment; longer means something is badly wrong. */
const KILL_WAIT_MS = 5_000;
/** How often the logs of running workers are held to their cap between inspections. */
const LOG_CAP_INTERVAL_MS = 2_000;
const EXIT_AFTER_SIGTERM = 143;
const EXIT_AFTER_SIGKILL = 137;

function toHandle(record: LaunchRecord): ProcessHandle {
  return { key: record.key, pid: record.pid, startTime: record.startTime };
}

function endedAt(exitFile: string): number {
  try {
    return fs.statSync(exitFile).mtimeMs;
  } catch {
    return Date.now();
  }
}

function removeWorkerFiles(files: WorkerFiles): void {
  // The record last: while it exists, the worker is still known to this target.
  for (const file of [files.log, files.claim, files.exit, files.record]) fs.rmSync(file, { force: true });
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await delay(POLL_MS);
  }
  return true;
}

/** Runs each workload's command as a child process of this machine, under an exit-recording wrapper. */
export class ProcessTarget implements LaunchTarget<ProcessTargetConfig, ProcessHandle> {
  readonly name = "process";
  readonly configSchema = processTargetConfigSchema;

  private config: ProcessTargetConfig = {};
  private settings: ProcessTargetSettings | undefined;
  private readonly bootId = currentBootId();
  /** Launches under way in this instance, so concurrent calls for one key share one spawn. */
  private readonly launching = new Map<string, Promise<ProcessHandle>>();
  /** Running workers whose log files the cap timer watches. */
  private readonly capped = new Set<string>();
  private capTimer: NodeJS.Timeout | undefined;

  async init(config: ProcessTargetConfig, ctx: PluginContext): Promise<void> {
    this.config = config ?? {};
    this.settings = undefined;
    this.settingsFor(ctx);
  }

  async launch(req: LaunchRequest, ctx: PluginContext): Promise<ProcessHandle> {
    const command = commandOf(req);
    if (!req.key) throw blacktreeError("LAUNCH_FAILED", "cannot launch: the launch key is empty", undefined, { retryable: false });
    const pending = this.launching.get(req.key);
    if (pending) return pending;
    const launch = this.launchOnce(req, command, ctx);
    this.launching.set(req.key, launch);
    const forget = () => this.launching.delete(req.key); // afterwards the launch record answers
    launch.then(forget, forget);
    return launch;
  }

  async inspect(handles: ProcessHandle[], ctx: PluginContext): Promise<TargetStatus[]> {
    const settings = this.settingsFor(ctx);
    return handles.map((handle) => this.statusOf(handle.key, settings));
  }

  async stop(handle: ProcessHandle, reason: string, ctx: PluginContext): Promise<void> {
    const settings = this.settingsFor(ctx);
    // A launch still under way has no record yet: let it finish, then stop what it started.
    await this.launching.get(handle.key)?.catch(() => undefined);
    const files = workerFiles(settings.stateDir, handle.key);
    const record = readRecord(files.record);
    if (!record || !this.groupIsOurs(record)) return;
    const members = () => livingGroupMembers(record.pid);
    if (members().length === 0) return; // already ended: recorded (exited) or not (lost)

    ctx.logger.info(`🔄 stopping worker ${handle.key} (pid ${record.pid}): ${reason}`);
    signalGroup(record.pid, "SIGTERM");
    let exitCode = EXIT_AFTER_SIGTERM;
    if (!(await waitUntil(() => members().length === 0, settings.stopGraceMs))) {
      ctx.logger.warn(`⚠️ worker ${handle.key} outlived its ${settings.stopGraceMs} ms grace; sending SIGKILL`);
      signalGroup(record.pid, "SIGKILL");
      exitCode = EXIT_AFTER_SIGKILL;
      if (!(await waitUntil(() => members().length === 0, KILL_WAIT_MS))) {
        throw blacktreeError("INTERNAL", `worker ${handle.key} (process group ${record.pid}) survived SIGKILL`);
      }
    }
    // The wrapper recorded the real status unless it was killed too (SIGKILL, or it was
    // already gone): then record what we did, so inspect says "exited", not "lost".
    writeFileIfAbsent(files.exit, `${exitCode}\n`);
    this.capped.delete(handle.key);
    ctx.logger.info(`✅ worker ${handle.key} stopped`);
  }

  async *logs(handle: ProcessHandle, ctx: PluginContext): AsyncIterable<string> {
    const settings = this.settingsFor(ctx);
    yield* tailLines(workerFiles(settings.stateDir, handle.key).log, settings.logMaxBytes);
  }

  /** Also where ended workers' files past their retention are removed, so the state directory stays bounded. */
  async list(ctx: PluginContext): Promise<string[]> {
    const settings = this.settingsFor(ctx);
    const now = Date.now();
    const live: string[] = [];
    for (const record of listRecordFiles(settings.stateDir).map(readRecord)) {
      if (record === null) continue;
      const files = workerFiles(settings.stateDir, record.key);
      // Like inspect: a worker whose exit code is written has ended, even while its wrapper is still exiting.
      if (readExitCode(files.exit) === null) {
        if (this.isAlive(record)) live.push(record.key);
        continue;
      }
      if (now - endedAt(files.exit) >= settings.retentionMs) removeWorkerFiles(files);
    }
    return live;
  }

  /** Leaves the workers running: a restarted orchestrator re-adopts them from their files. */
  async close(): Promise<void> {
    if (this.capTimer) clearInterval(this.capTimer);
    this.capTimer = undefined;
    this.capped.clear();
  }

  private settingsFor(ctx: PluginContext): ProcessTargetSettings {
    if (!this.settings) {
      this.settings = resolveSettings(this.config, ctx.dataDir);
      // Logs may hold whatever a worker printed: keep them to this user.
      fs.mkdirSync(this.settings.stateDir, { recursive: true, mode: 0o700 });
    }
    return this.settings;
  }

  private async launchOnce(req: LaunchRequest, command: string[], ctx: PluginContext): Promise<ProcessHandle> {
    const settings = this.settingsFor(ctx);
    const files = workerFiles(settings.stateDir, req.key);
    const deadline = Date.now() + CLAIM_WAIT_MS;
    for (;;) {
      const record = readRecord(files.record);
      if (record) return toHandle(record); // launched before, maybe by an earlier orchestrator
      if (tryClaim(files.claim)) break;
      if (claimHolderAlive(files.claim)) {
        if (Date.now() >= deadline) {
          throw blacktreeError("LAUNCH_FAILED", `cannot launch ${req.key}: another launch of this key is still under way`, undefined, { retryable: true });
        }
        await delay(POLL_MS);
        continue;
      }
      const adopted = this.adoptHalfRecorded(files, req.key);
      if (adopted) {
        ctx.logger.warn(`⚠️ adopted worker ${req.key} (pid ${adopted.pid}) left half-recorded by a launcher that died`);
        return adopted;
      }
      takeOverClaim(files.claim);
      break;
    }
    try {
      const record = await spawnWorker(files, req.key, command, workerEnv(req.workload.env ?? {}));
      ctx.logger.info(`🔄 launched worker ${req.key} as pid ${record.pid}`);
      this.watchLog(req.key, settings);
      return toHandle(record);
    } finally {
      releaseClaim(files.claim);
    }
  }

  /**
   * A launcher that died between spawning and writing the record left a claim and no
   * record. Its wrapper, if any, carries the exit-file path in its argv: find it there.
   */
  private adoptHalfRecorded(files: WorkerFiles, key: string): ProcessHandle | null {
    const wrapper = findGroupLeaderWithArg(files.exit);
    const ended = readExitCode(files.exit) !== null;
    if (!wrapper && !ended) return null; // nothing was started: launch afresh
    // An ended one is recorded without a pid: inspect answers from its exit file.
    const record: LaunchRecord = {
      key,
      pid: wrapper?.pid ?? 0,
      startTime: wrapper?.startTime ?? 0,
      bootId: this.bootId,
      launchedAt: Date.now(),
    };
    writeRecord(files.record, record);
    releaseClaim(files.claim);
    return toHandle(record);
  }

  private statusOf(key: string, settings: ProcessTargetSettings): TargetStatus {
    const files = workerFiles(settings.stateDir, key);
    const exitCode = readExitCode(files.exit);
    if (exitCode !== null) return { key, state: "exited", exitCode };
    const record = readRecord(files.record);
    if (!record) return { key, state: "lost", reason: "no launch record for this key" };
    if (this.isAlive(record)) {
      this.watchLog(key, settings);
      capLogFile(files.log, settings.logFileMaxBytes, settings.logMaxBytes);
      return { key, state: "running" };
    }
    // The wrapper may have written its file and ended between the two reads.
    const lateExitCode = readExitCode(files.exit);
    if (lateExitCode !== null) return { key, state: "exited", exitCode: lateExitCode };
    return { key, state: "lost", reason: "process gone without an exit status" };
  }

  private isAlive(record: LaunchRecord): boolean {
    return record.bootId === this.bootId && isSameProcessAlive(record.pid, record.startTime);
  }

  /**
   * Whether the process group named by the record can only be ours: not after a reboot,
   * and not when its pid now belongs to another process. A group whose leader is gone is
   * still ours: a pid stays allocated while any group still uses it as its id.
   */
  private groupIsOurs(record: LaunchRecord): boolean {
    if (record.pid <= 1 || record.bootId !== this.bootId) return false;
    const leader = readProcStat(record.pid);
    return leader === null || leader.startTime === record.startTime;
  }

  /** Between inspections a chatty worker could still fill the disk: a timer holds running logs to their cap. */
  private watchLog(key: string, settings: ProcessTargetSettings): void {
    this.capped.add(key);
    if (this.capTimer) return;
    this.capTimer = setInterval(() => this.capRunningLogs(settings), LOG_CAP_INTERVAL_MS);
    this.capTimer.unref();
  }

  private capRunningLogs(settings: ProcessTargetSettings): void {
    for (const key of this.capped) {
      const files = workerFiles(settings.stateDir, key);
      capLogFile(files.log, settings.logFileMaxBytes, settings.logMaxBytes);
      const record = readRecord(files.record);
      if (!record || !this.isAlive(record)) this.capped.delete(key);
    }
    if (this.capped.size === 0 && this.capTimer) {
      clearInterval(this.capTimer);
      this.capTimer = undefined;
    }
  }
}

export function createProcessTarget(): ProcessTarget {
  return new ProcessTarget();
}

/** The workload's own command, or the host's copy of the reference worker it names. */
function commandOf(req: LaunchRequest): string[] {
  const { command, worker } = req.workload;
  if (Array.isArray(command) && command.length > 0 && command[0]) return command;
  if (worker) {
    const host = hostWorkerCommand(worker);
    if (host) return host;
    throw blacktreeError("LAUNCH_FAILED", `cannot launch ${req.key}: worker '${worker}' is not a reference worker, and the process target runs only those (give the workload a command, or route it to a container target)`, undefined, { retryable: false });
  }
  throw blacktreeError("LAUNCH_FAILED", `cannot launch ${req.key}: the workload has no command`, undefined, { retryable: false });
}
