import { randomUUID } from "node:crypto";
import { EmulatorClock, scriptFrom, WorkerScript } from "./clock";

/** An ECS API error: the server answers `{"__type", "message"}` with status 400. */
export class EcsError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

interface EmulatedTask {
  arn: string;
  clientToken: string | null;
  startedBy: string | null;
  cluster: string;
  taskDefinition: string;
  containerName: string;
  tags: Array<{ key: string; value: string }>;
  overrides: unknown;
  launchType: string | null;
  createdAt: number;
  script: WorkerScript;
  /** Set by StopTask. */
  stopRequestedAt: number | null;
  stopReason: string | null;
}

export interface EcsTiming {
  /** Time spent in each of PROVISIONING and PENDING. */
  phaseMs: number;
  /** How long a worker runs when its env does not say. */
  defaultRunMs: number;
  /** StopTask → STOPPED for a worker that honours SIGTERM. */
  termMs: number;
  /** StopTask → STOPPED (killed) for one that ignores it: the container's stopTimeout. */
  killAfterMs: number;
}

const OVERRIDES_LIMIT = 8192;
const REGION_ACCOUNT = "us-east-1:000000000000";

/** ECS as far as the targets use it: RunTask, DescribeTasks, StopTask, ListTasks; time-scripted task lifecycles. */
export class EcsEmulator {
  readonly tasks = new Map<string, EmulatedTask>();
  private readonly byToken = new Map<string, string>();

  constructor(private readonly clock: EmulatorClock, readonly timing: EcsTiming) {}

  handle(action: string, body: any, capacityFault: boolean): unknown {
    switch (action) {
      case "RunTask":
        return this.runTask(body, capacityFault);
      case "DescribeTasks":
        return this.describeTasks(body);
      case "StopTask":
        return this.stopTask(body);
      case "ListTasks":
        return this.listTasks(body);
      default:
        throw new EcsError("InvalidParameterException", `The emulator does not implement ${action}`);
    }
  }

  /** A task that vanished (the way tasks age out of ECS): DescribeTasks answers MISSING. */
  forget(arn: string): void {
    this.tasks.delete(arn);
  }

  /** Tasks launched with this tag value (test assertions: one task per key). */
  tasksTagged(key: string, value: string): string[] {
    return [...this.tasks.values()].filter((t) => t.tags.some((tag) => tag.key === key && tag.value === value)).map((t) => t.arn);
  }

  private runTask(body: any, capacityFault: boolean) {
    if (!body.taskDefinition) throw new EcsError("InvalidParameterException", "taskDefinition is required");
    if (body.clientToken !== undefined && String(body.clientToken).length > 64) throw new EcsError("InvalidParameterException", "clientToken must be at most 64 characters");
    if (body.startedBy !== undefined && String(body.startedBy).length > 36) throw new EcsError("InvalidParameterException", "startedBy must be at most 36 characters");
    if (body.overrides && JSON.stringify(body.overrides).length > OVERRIDES_LIMIT) throw new EcsError("InvalidParameterException", "Container Overrides length must be at most 8192");
    if (!body.networkConfiguration?.awsvpcConfiguration?.subnets?.length) throw new EcsError("InvalidParameterException", "Network Configuration must be provided when networkMode 'awsvpc' is specified.");
    const known = body.clientToken && this.byToken.get(body.clientToken);
    if (known && this.tasks.has(known)) return { tasks: [this.view(this.tasks.get(known)!)], failures: [] };
    if (capacityFault) return { tasks: [], failures: [{ reason: "Capacity is unavailable at this time. Please try again later or in a different availability zone", detail: "emulated" }] };
    const container = body.overrides?.containerOverrides?.[0];
    const env = Object.fromEntries(((container?.environment ?? []) as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
    const cluster = body.cluster ?? "default";
    const task: EmulatedTask = {
      arn: `arn:aws:ecs:${REGION_ACCOUNT}:task/${cluster}/${randomUUID().replace(/-/g, "")}`,
      clientToken: body.clientToken ?? null,
      startedBy: body.startedBy ?? null,
      cluster,
      taskDefinition: body.taskDefinition,
      containerName: container?.name ?? "worker",
      tags: body.tags ?? [],
      overrides: body.overrides ?? {},
      launchType: body.launchType ?? null,
      createdAt: this.clock.now(),
      script: scriptFrom(env, this.timing.defaultRunMs),
      stopRequestedAt: null,
      stopReason: null,
    };
    this.tasks.set(task.arn, task);
    if (task.clientToken) this.byToken.set(task.clientToken, task.arn);
    return { tasks: [this.view(task)], failures: [] };
  }

  private describeTasks(body: any) {
    const arns: string[] = body.tasks ?? [];
    if (arns.length > 100) throw new EcsError("InvalidParameterException", "Tasks cannot be longer than 100 elements");
    const tasks = [];
    const failures = [];
    for (const arn of arns) {
      const task = this.tasks.get(arn);
      if (task) tasks.push(this.view(task, (body.include ?? []).includes("TAGS")));
      else failures.push({ arn, reason: "MISSING" });
    }
    return { tasks, failures };
  }

  private stopTask(body: any) {
    const task = this.tasks.get(body.task);
    if (!task) throw new EcsError("InvalidParameterException", "The referenced task was not found.");
    if (task.stopRequestedAt === null && this.phase(task).lastStatus !== "STOPPED") {
      task.stopRequestedAt = this.clock.now();
      task.stopReason = body.reason ?? "Task stopped by user";
    }
    return { task: this.view(task) };
  }

  private listTasks(body: any) {
    const desired = body.desiredStatus ?? "RUNNING";
    const all = [...this.tasks.values()]
      .filter((t) => (body.startedBy === undefined || t.startedBy === body.startedBy) && (body.cluster ?? "default") === t.cluster)
      .filter((t) => this.phase(t).desiredStatus === desired)
      .map((t) => t.arn);
    const start = body.nextToken ? Number(body.nextToken) : 0;
    const size = Math.min(body.maxResults ?? 100, 100);
    const page = all.slice(start, start + size);
    return { taskArns: page, ...(start + size < all.length ? { nextToken: String(start + size) } : {}) };
  }

  /** Where the task is now, from its creation time, its script and any stop request. */
  private phase(t: EmulatedTask): { lastStatus: string; desiredStatus: string; exitCode?: number; stopCode?: string; stoppedReason?: string } {
    const now = this.clock.now();
    const { phaseMs, termMs, killAfterMs } = this.timing;
    const runningAt = t.createdAt + 2 * phaseMs;
    if (t.stopRequestedAt !== null) {
      const endAt = t.stopRequestedAt + (t.script.ignoreTerm ? killAfterMs : termMs);
      if (now < endAt) return { lastStatus: "DEACTIVATING", desiredStatus: "STOPPED" };
      const ran = t.stopRequestedAt >= runningAt;
      return {
        lastStatus: "STOPPED",
        desiredStatus: "STOPPED",
        stopCode: "UserInitiated",
        stoppedReason: t.stopReason ?? "Task stopped by user",
        ...(ran ? { exitCode: t.script.ignoreTerm ? 137 : 143 } : {}),
      };
    }
    if (t.script.stopCode && now >= t.createdAt + phaseMs) {
      return { lastStatus: "STOPPED", desiredStatus: "STOPPED", stopCode: t.script.stopCode, stoppedReason: `emulated ${t.script.stopCode}` };
    }
    if (now < t.createdAt + phaseMs) return { lastStatus: "PROVISIONING", desiredStatus: "RUNNING" };
    if (now < runningAt) return { lastStatus: "PENDING", desiredStatus: "RUNNING" };
    if (now < runningAt + t.script.runMs) return { lastStatus: "RUNNING", desiredStatus: "RUNNING" };
    return { lastStatus: "STOPPED", desiredStatus: "STOPPED", exitCode: t.script.exit, stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited" };
  }

  private view(t: EmulatedTask, withTags = true) {
    const p = this.phase(t);
    return {
      taskArn: t.arn,
      clusterArn: `arn:aws:ecs:${REGION_ACCOUNT}:cluster/${t.cluster}`,
      taskDefinitionArn: t.taskDefinition,
      lastStatus: p.lastStatus,
      desiredStatus: p.desiredStatus,
      launchType: t.launchType ?? undefined,
      startedBy: t.startedBy ?? undefined,
      createdAt: t.createdAt / 1000,
      overrides: t.overrides,
      containers: [{ name: t.containerName, lastStatus: p.lastStatus, ...(p.exitCode !== undefined ? { exitCode: p.exitCode } : {}) }],
      ...(p.stopCode ? { stopCode: p.stopCode, stoppedReason: p.stoppedReason } : {}),
      ...(withTags ? { tags: t.tags } : {}),
    };
  }
}
