import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { waitFor } from "./wait";

/**
 * A lock across jest workers for test files that share fixed outside resources (the
 * RabbitMQ wire queues are fixed names; a file purges them and closes all connections).
 * A lock left by a dead process is taken over.
 */
export async function exclusive(name: string, timeout = 240_000): Promise<() => void> {
  const dir = path.join(os.tmpdir(), `blacktree-test-lock-${name}`);
  const owner = path.join(dir, "pid");
  await waitFor(
    () => {
      try {
        fs.mkdirSync(dir);
        fs.writeFileSync(owner, String(process.pid));
        return true;
      } catch {
        const pid = Number(fs.readFileSync(owner, { encoding: "utf8", flag: "a+" }) || 0);
        if (pid && !alive(pid)) fs.rmSync(dir, { recursive: true, force: true });
        return false;
      }
    },
    { timeout, interval: 50, message: `lock ${name}` },
  );
  return () => fs.rmSync(dir, { recursive: true, force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
