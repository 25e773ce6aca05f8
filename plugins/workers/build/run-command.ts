import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { log } from "./log";

export interface CommandResult {
  /** null when it did not start or was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the executable could not be started (ENOENT: not installed). */
  startError?: NodeJS.ErrnoException;
  timedOut: boolean;
  /** The last lines it printed, for error messages. */
  lastLines: string[];
}

export interface CommandOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Copy its output into the worker's log under this tool name; omit to keep it quiet. */
  echoAs?: string;
}

const KEPT_LINES = 20;
/** Children still running, so a SIGTERM to the worker can stop them before it cleans up. */
const running = new Set<ChildProcess>();

export function runCommand(file: string, args: string[], options: CommandOptions): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: options.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const lastLines: string[] = [];
    let timedOut = false;
    let startError: NodeJS.ErrnoException | undefined;
    running.add(child);
    const collect = (stream: NodeJS.ReadableStream, name: "stdout" | "stderr") =>
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => {
        lastLines.push(line);
        if (lastLines.length > KEPT_LINES) lastLines.shift();
        if (options.echoAs) log.child(options.echoAs, line, name);
      });
    if (child.stdout) collect(child.stdout, "stdout");
    if (child.stderr) collect(child.stderr, "stderr");
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, options.timeoutMs)
      : undefined;
    child.on("error", (err) => {
      startError = err;
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal, startError, timedOut, lastLines });
    });
  });
}

/** SIGTERM to every running child, SIGKILL to those still there after the grace. */
export async function stopRunningCommands(graceMs: number): Promise<void> {
  const children = [...running];
  const closed = children.map((child) => new Promise<void>((resolve) => child.once("close", () => resolve())));
  for (const child of children) child.kill("SIGTERM");
  const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
  await Promise.race([Promise.all(closed), grace]);
  for (const child of running) child.kill("SIGKILL");
  await Promise.race([Promise.all(closed), new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())]);
}
