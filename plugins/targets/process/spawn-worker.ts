import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import { blacktreeError } from "@blacktree/sdk";
import { currentBootId, readProcStat } from "./proc";
import { writeRecord, type LaunchRecord, type WorkerFiles } from "./state-files";
import { wrapperArgs } from "./wrapper";
import { findExecutable } from "./worker-env";

const SHELL = "/bin/sh";

function launchFailed(message: string, retryable: boolean) {
  return blacktreeError("LAUNCH_FAILED", message, undefined, { retryable });
}

/**
 * Starts the wrapper (and so the worker) and writes the launch record before returning.
 * Output goes to a file, not a pipe: a pipe's reader is the orchestrator, and a worker
 * writing to it after the orchestrator died would get SIGPIPE.
 */
export async function spawnWorker(
  files: WorkerFiles,
  key: string,
  command: string[],
  env: Record<string, string>,
): Promise<LaunchRecord> {
  const cwd = process.cwd();
  if (!findExecutable(command[0], env.PATH ?? "", cwd)) {
    throw launchFailed(`cannot launch ${key}: executable "${command[0]}" not found (or not executable) on the worker's PATH`, false);
  }
  fs.rmSync(files.exit, { force: true });
  const logFd = fs.openSync(files.log, "a", 0o600);
  let child: ChildProcess;
  try {
    child = spawn(SHELL, wrapperArgs(files.exit, command), { detached: true, stdio: ["ignore", logFd, logFd], env, cwd });
  } catch (err) {
    // Synchronous failures are bad arguments (e.g. a NUL byte): retrying cannot help.
    throw launchFailed(`cannot launch ${key}: ${(err as Error).message}`, false);
  } finally {
    fs.closeSync(logFd); // the child holds its own copy
  }
  if (child.pid === undefined) {
    const [err] = (await once(child, "error")) as [Error];
    throw launchFailed(`cannot launch ${key}: ${SHELL} failed to start: ${err.message}`, false);
  }
  child.on("error", () => undefined); // nothing to do: the exit file and /proc tell the story
  child.unref(); // the worker must not keep the orchestrator alive, nor die with it

  // Read now, before the event loop can reap it: even a wrapper that already ended is
  // still a zombie here, so its start time is there to read.
  const stat = readProcStat(child.pid);
  if (!stat) throw launchFailed(`cannot launch ${key}: pid ${child.pid} vanished at once`, true);
  const record: LaunchRecord = { key, pid: child.pid, startTime: stat.startTime, bootId: currentBootId(), launchedAt: Date.now() };
  writeRecord(files.record, record);
  return record;
}
