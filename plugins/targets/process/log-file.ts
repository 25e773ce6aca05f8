import fs from "node:fs";

/** The last `maxBytes` of a file, cut at its first line break when the cut fell inside a line. */
export function readTail(file: string, maxBytes: number): string {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return "";
  }
  try {
    const size = fs.fstatSync(fd).size;
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    const read = fs.readSync(fd, buffer, 0, length, size - length);
    let tail = buffer.subarray(0, read);
    if (size > length) {
      // Cutting at a newline also drops a multi-byte character split by the cut.
      const newline = tail.indexOf(0x0a);
      tail = newline === -1 ? Buffer.alloc(0) : tail.subarray(newline + 1);
    }
    return tail.toString("utf8");
  } finally {
    fs.closeSync(fd);
  }
}

export function tailLines(file: string, maxBytes: number): string[] {
  const lines = readTail(file, maxBytes).split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * Keeps a log file under `maxFileBytes` by cutting it down to its last `keepBytes`
 * ("copytruncate"). Rotating by rename would not help: the worker keeps writing to the
 * inode it holds. Truncating in place is safe because the worker's descriptor was opened
 * with O_APPEND: its next write lands at the new end instead of leaving a hole of zeros
 * at its old offset. Output written between our read and the truncation is lost, which
 * is acceptable for a log that is over its cap anyway.
 */
export function capLogFile(file: string, maxFileBytes: number, keepBytes: number): boolean {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return false;
  }
  if (size <= maxFileBytes) return false;
  const tail = readTail(file, keepBytes);
  const fd = fs.openSync(file, "a");
  try {
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `[blacktree] the log went over ${maxFileBytes} bytes; older output was dropped\n${tail}`);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}
