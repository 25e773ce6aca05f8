import fs from "node:fs";

/** What this target needs from /proc/<pid>/stat (Linux only). */
export interface ProcStat {
  pid: number;
  /** R, S, D, Z (zombie), X (dead), … */
  state: string;
  pgrp: number;
  /** Field 22: clock ticks after boot at which the process started. */
  startTime: number;
}

export function readProcStat(pid: number): ProcStat | null {
  if (!Number.isInteger(pid) || pid <= 1) return null;
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // Field 2 is the command name in parentheses and may itself hold spaces or ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 of the line, so field n is fields[n - 3].
  return { pid, state: fields[0], pgrp: Number(fields[2]), startTime: Number(fields[19]) };
}

export function isLiving(stat: ProcStat | null): stat is ProcStat {
  // A zombie has ended; in containers whose PID 1 never reaps, zombies stay for good.
  return stat !== null && stat.state !== "Z" && stat.state !== "X";
}

/** True only for the very process that was recorded, not a later one that reuses its pid. */
export function isSameProcessAlive(pid: number, startTime: number): boolean {
  const stat = readProcStat(pid);
  return isLiving(stat) && stat.startTime === startTime;
}

export function currentBootId(): string {
  try {
    return fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "";
  }
}

function allPids(): number[] {
  return fs
    .readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** Living (non-zombie) processes in a process group. */
export function livingGroupMembers(pgid: number): number[] {
  return allPids().filter((pid) => {
    const stat = readProcStat(pid);
    return isLiving(stat) && stat.pgrp === pgid;
  });
}

/** A living process-group leader whose argv holds exactly `arg` (how a half-recorded launch is found again). */
export function findGroupLeaderWithArg(arg: string): ProcStat | null {
  for (const pid of allPids()) {
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (!argv.includes(arg)) continue;
    const stat = readProcStat(pid);
    // The leader is the wrapper itself; its forks share its argv only until they exec.
    if (isLiving(stat) && stat.pgrp === pid) return stat;
  }
  return null;
}

/** Signals a whole process group; false when it no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  // Never -0 or -1: those mean "our own group" and "every process we may signal".
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}
