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
  /** A service deployment (UpdateService, CreateService) reaches its outcome this long after it began. */
  rolloutMs: number;
}

interface EmulatedTaskDefinition {
  arn: string;
  family: string;
  revision: number;
  /** What RegisterTaskDefinition was given (containerDefinitions, roles, cpu, …). */
  body: Record<string, any>;
  tags: Array<{ key: string; value: string }>;
  registeredAt: number;
}

/** One rollout of a service: its tasks run `desiredCount` once it settles, unless it fails. */
interface EmulatedDeployment {
  id: string;
  taskDefinition: string;
  desiredCount: number;
  /** Tasks running before it settles (a scale change starts from the old count). */
  runningBefore: number;
  createdAt: number;
  settlesAt: number;
  fails: boolean;
}

interface EmulatedService {
  arn: string;
  name: string;
  cluster: string;
  status: "ACTIVE" | "INACTIVE";
  desiredCount: number;
  taskDefinition: string;
  /** Newest first: the first is PRIMARY. */
  deployments: EmulatedDeployment[];
  createdAt: number;
}

const OVERRIDES_LIMIT = 8192;
const REGION_ACCOUNT = "us-east-1:000000000000";

/**
 * ECS as far as the targets and the deploy worker use it: RunTask, DescribeTasks, StopTask,
 * ListTasks with time-scripted task lifecycles; task definitions (Register, Describe) and
 * services (Create, Update, Describe, Delete) with rollouts that settle `rolloutMs` after
 * they begin — or fail, for the images `failRolloutsOf` names.
 */
export class EcsEmulator {
  readonly tasks = new Map<string, EmulatedTask>();
  private readonly byToken = new Map<string, string>();
  /** By ARN; the latest revision of a family is the highest. */
  readonly taskDefinitions = new Map<string, EmulatedTaskDefinition>();
  /** By `<cluster>/<name>`. */
  readonly services = new Map<string, EmulatedService>();
  /** Rollouts of task definitions running one of these images fail (tasks never become healthy). */
  private readonly failingImages = new Set<string>();

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
      case "RegisterTaskDefinition":
        return this.registerTaskDefinition(body);
      case "DescribeTaskDefinition":
        return this.describeTaskDefinition(body);
      case "CreateService":
        return this.createService(body);
      case "UpdateService":
        return this.updateService(body);
      case "DescribeServices":
        return this.describeServices(body);
      case "DeleteService":
        return this.deleteService(body);
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

  /** From now on, a rollout of a task definition that runs `image` fails instead of settling. */
  failRolloutsOf(image: string): void {
    this.failingImages.add(image);
  }

  /** A service as DescribeServices shows it now (test assertions), or null. */
  serviceView(cluster: string, name: string) {
    const service = this.services.get(`${cluster}/${name}`);
    return service ? this.serviceOut(service) : null;
  }

  private registerTaskDefinition(body: any) {
    const family = body.family;
    if (typeof family !== "string" || !/^[A-Za-z0-9_-]{1,255}$/.test(family)) throw new EcsError("ClientException", "Family contains invalid characters or is missing.");
    const containers = body.containerDefinitions;
    if (!Array.isArray(containers) || containers.length === 0) throw new EcsError("ClientException", "Container list cannot be empty.");
    for (const c of containers) if (!c?.name || !c?.image) throw new EcsError("ClientException", "Container.name and Container.image should not be null or empty.");
    const revision = Math.max(0, ...[...this.taskDefinitions.values()].filter((t) => t.family === family).map((t) => t.revision)) + 1;
    const { tags = [], ...rest } = body;
    const td: EmulatedTaskDefinition = { arn: `arn:aws:ecs:${REGION_ACCOUNT}:task-definition/${family}:${revision}`, family, revision, body: rest, tags, registeredAt: this.clock.now() };
    this.taskDefinitions.set(td.arn, td);
    return { taskDefinition: this.taskDefinitionOut(td), tags };
  }

  /** `family`, `family:revision` or an ARN. */
  private findTaskDefinition(ref: unknown): EmulatedTaskDefinition {
    const text = String(ref ?? "");
    const byArn = this.taskDefinitions.get(text);
    if (byArn) return byArn;
    const [family, revision] = text.split(":");
    const matching = [...this.taskDefinitions.values()].filter((t) => t.family === family && (revision === undefined || String(t.revision) === revision));
    const found = matching.sort((a, b) => b.revision - a.revision)[0];
    if (!found) throw new EcsError("ClientException", "Unable to describe task definition.");
    return found;
  }

  private describeTaskDefinition(body: any) {
    const td = this.findTaskDefinition(body.taskDefinition);
    return { taskDefinition: this.taskDefinitionOut(td), ...((body.include ?? []).includes("TAGS") ? { tags: td.tags } : {}) };
  }

  private taskDefinitionOut(td: EmulatedTaskDefinition) {
    return { ...td.body, taskDefinitionArn: td.arn, family: td.family, revision: td.revision, status: "ACTIVE", registeredAt: td.registeredAt / 1000, compatibilities: ["EC2", "FARGATE"] };
  }

  private serviceOf(body: any, field: "service" | "serviceName"): EmulatedService | undefined {
    const cluster = body.cluster ?? "default";
    const ref = String(body[field] ?? "");
    const name = ref.startsWith("arn:") ? ref.split("/").pop()! : ref;
    return this.services.get(`${cluster}/${name}`);
  }

  private createService(body: any) {
    const cluster = body.cluster ?? "default";
    const name = body.serviceName;
    if (typeof name !== "string" || !/^[A-Za-z0-9_-]{1,255}$/.test(name)) throw new EcsError("InvalidParameterException", "serviceName is invalid");
    const existing = this.serviceOf(body, "serviceName");
    if (existing && existing.status === "ACTIVE") throw new EcsError("InvalidParameterException", "Creation of service was not idempotent.");
    const td = this.findTaskDefinition(body.taskDefinition);
    const now = this.clock.now();
    const service: EmulatedService = {
      arn: `arn:aws:ecs:${REGION_ACCOUNT}:service/${cluster}/${name}`,
      name,
      cluster,
      status: "ACTIVE",
      desiredCount: body.desiredCount ?? 1,
      taskDefinition: td.arn,
      deployments: [],
      createdAt: now,
    };
    service.deployments.push(this.rollout(td, service.desiredCount, 0, now));
    this.services.set(`${cluster}/${name}`, service);
    return { service: this.serviceOut(service) };
  }

  private updateService(body: any) {
    const service = this.serviceOf(body, "service");
    if (!service || service.status !== "ACTIVE") throw new EcsError("ServiceNotFoundException", "Service not found.");
    this.settle(service);
    const now = this.clock.now();
    const desired = body.desiredCount ?? service.desiredCount;
    const primary = service.deployments[0];
    const running = this.running(primary, now);
    if (body.taskDefinition !== undefined || body.forceNewDeployment) {
      const td = body.taskDefinition !== undefined ? this.findTaskDefinition(body.taskDefinition) : this.findTaskDefinition(service.taskDefinition);
      // The deployments it replaces keep the tasks they run now until the new one completes.
      for (const d of service.deployments) {
        d.runningBefore = this.running(d, now);
        d.desiredCount = d.runningBefore;
        d.settlesAt = now;
        d.fails = false;
      }
      service.taskDefinition = td.arn;
      service.deployments.unshift(this.rollout(td, desired, 0, now));
    } else if (desired !== service.desiredCount) {
      primary.runningBefore = running;
      primary.desiredCount = desired;
      primary.createdAt = now;
      primary.settlesAt = now + this.timing.rolloutMs;
    }
    service.desiredCount = desired;
    return { service: this.serviceOut(service) };
  }

  private describeServices(body: any) {
    const services = [];
    const failures = [];
    for (const ref of (body.services ?? []) as string[]) {
      const service = this.serviceOf({ cluster: body.cluster, service: ref }, "service");
      if (service) services.push(this.serviceOut(service));
      else failures.push({ arn: ref, reason: "MISSING" });
    }
    return { services, failures };
  }

  private deleteService(body: any) {
    const service = this.serviceOf(body, "service");
    if (!service || service.status !== "ACTIVE") throw new EcsError("ServiceNotFoundException", "Service not found.");
    this.settle(service);
    if (!body.force && service.desiredCount > 0) throw new EcsError("InvalidParameterException", "The service cannot be stopped while it is scaled above 0.");
    service.status = "INACTIVE";
    service.desiredCount = 0;
    service.deployments = [];
    return { service: this.serviceOut(service) };
  }

  private rollout(td: EmulatedTaskDefinition, desiredCount: number, runningBefore: number, now: number): EmulatedDeployment {
    const images: string[] = (td.body.containerDefinitions ?? []).map((c: any) => c.image);
    return {
      id: `ecs-svc/${randomUUID().replace(/-/g, "").slice(0, 19)}`,
      taskDefinition: td.arn,
      desiredCount,
      runningBefore,
      createdAt: now,
      settlesAt: now + this.timing.rolloutMs,
      fails: images.some((i) => this.failingImages.has(i)),
    };
  }

  private running(d: EmulatedDeployment, now: number): number {
    if (now < d.settlesAt) return d.runningBefore;
    return d.fails ? 0 : d.desiredCount;
  }

  /** A primary deployment that completed drains the others (they are gone from the list). */
  private settle(service: EmulatedService): void {
    const primary = service.deployments[0];
    if (primary && !primary.fails && this.clock.now() >= primary.settlesAt) service.deployments = [primary];
  }

  private serviceOut(service: EmulatedService) {
    this.settle(service);
    const now = this.clock.now();
    const deployments = service.deployments.map((d, i) => {
      const settled = now >= d.settlesAt;
      const rolloutState = i > 0 ? "COMPLETED" : !settled ? "IN_PROGRESS" : d.fails ? "FAILED" : "COMPLETED";
      return {
        id: d.id,
        status: i === 0 ? "PRIMARY" : "ACTIVE",
        taskDefinition: d.taskDefinition,
        desiredCount: d.desiredCount,
        runningCount: this.running(d, now),
        pendingCount: settled ? 0 : Math.max(0, d.desiredCount - d.runningBefore),
        failedTasks: settled && d.fails ? d.desiredCount : 0,
        rolloutState,
        ...(rolloutState === "FAILED" ? { rolloutStateReason: "ECS deployment circuit breaker: tasks failed to start." } : {}),
        createdAt: d.createdAt / 1000,
        updatedAt: Math.min(now, d.settlesAt) / 1000,
      };
    });
    return {
      serviceArn: service.arn,
      serviceName: service.name,
      clusterArn: `arn:aws:ecs:${REGION_ACCOUNT}:cluster/${service.cluster}`,
      status: service.status,
      desiredCount: service.desiredCount,
      runningCount: deployments.reduce((n, d) => n + d.runningCount, 0),
      pendingCount: deployments.reduce((n, d) => n + d.pendingCount, 0),
      taskDefinition: service.taskDefinition,
      deployments,
      createdAt: service.createdAt / 1000,
    };
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
