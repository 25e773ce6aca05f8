import fs from "node:fs";

/** The state letter of /proc/<pid>/stat (R, S, Z, …), or null when there is no such process. */
export function procState(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0];
  } catch {
    return null;
  }
}

/** Gone, or a zombie: this container's PID 1 never reaps orphans, so zombies stay but run nothing. */
export function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  return procState(pid) === "Z";
}
