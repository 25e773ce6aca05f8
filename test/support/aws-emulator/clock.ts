/** The emulator's clock: real time plus an offset tests may advance, so lifecycles move on demand. */
export class EmulatorClock {
  private offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  advance(ms: number): void {
    this.offset += ms;
  }
}

/** What a workload asks of its emulated worker, read from its env (`BLACKTREE_TEST_EXIT=3`, …). */
export interface WorkerScript {
  /** Exit code when the worker ends by itself. */
  exit: number;
  /** How long the worker runs once RUNNING. */
  runMs: number;
  /** Ignores SIGTERM: only the kill after the grace ends it. */
  ignoreTerm: boolean;
  /** ECS only: the task stops with this stopCode before running (TaskFailedToStart, SpotInterruption, …). */
  stopCode: string | null;
  /** EC2 only: the worker never tags its exit code (the tagging failed, or the instance died first). */
  untagged: boolean;
}

export function scriptFrom(env: Record<string, string>, defaultRunMs: number): WorkerScript {
  return {
    exit: Number(env.BLACKTREE_TEST_EXIT ?? 0),
    runMs: Number(env.BLACKTREE_TEST_RUN_MS ?? defaultRunMs),
    ignoreTerm: env.BLACKTREE_TEST_IGNORE_TERM === "1",
    stopCode: env.BLACKTREE_TEST_STOP_CODE ?? null,
    untagged: env.BLACKTREE_TEST_UNTAGGED === "1",
  };
}

/** A fault the next matching call(s) meet. */
export type Fault =
  | { action: string; kind: "throttle"; times?: number }
  | { action: string; kind: "capacity"; times?: number }
  | { action: string; kind: "drop"; times?: number }
  | { action: string; kind: "slow"; ms: number; times?: number };

export interface CallRecord {
  service: "ecs" | "ec2" | "ecr";
  action: string;
  at: number;
  /** False when the call was throttled. */
  accepted: boolean;
  /** The access key id the call was signed with (null when unsigned). */
  accessKeyId: string | null;
}
