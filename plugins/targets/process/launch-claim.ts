import fs from "node:fs";
import { isSameProcessAlive, readProcStat } from "./proc";
import { readJson, writeFileAtomic } from "./state-files";

/**
 * A claim file marks a launch under way (O_EXCL create), so two target instances on one
 * stateDir never both spawn a worker for a key. It names the claiming process, so a
 * claim left by a launcher that died can be recognised and taken over.
 */
interface ClaimHolder {
  pid: number;
  startTime: number;
}

function ourselves(): ClaimHolder {
  return { pid: process.pid, startTime: readProcStat(process.pid)?.startTime ?? 0 };
}

export function tryClaim(file: string): boolean {
  try {
    fs.writeFileSync(file, JSON.stringify(ourselves()), { flag: "wx", mode: 0o600 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

/** Also true while the holder is still writing the file: it was created an instant ago. */
export function claimHolderAlive(file: string): boolean {
  const holder = readJson(file) as Partial<ClaimHolder> | null;
  if (!holder) return fs.existsSync(file);
  return typeof holder.pid === "number" && typeof holder.startTime === "number" && isSameProcessAlive(holder.pid, holder.startTime);
}

/**
 * Replaces a dead launcher's claim. Not atomic against a second launcher doing the same
 * at the same instant, which needs two orchestrators relaunching one attempt right after
 * a crash; the dispatcher's lease already rules that out.
 */
export function takeOverClaim(file: string): void {
  writeFileAtomic(file, JSON.stringify(ourselves()));
}

export function releaseClaim(file: string): void {
  fs.rmSync(file, { force: true });
}
