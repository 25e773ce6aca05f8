import { DescribeTasksCommand, ECSClient, ListTasksCommand, RunTaskCommand, StopTaskCommand, type RunTaskCommandInput, type Task } from "@aws-sdk/client-ecs";
import { blacktreeError, containerRun, registryEnv, type LaunchRequest, type LaunchTarget, type PluginContext, type TargetHandle, type TargetStatus } from "@blacktree/sdk";
import { awsMessage, errorName, isThrottling, isTransient } from "../aws-shared/aws-errors";
import { CallSpacer, spaceCommand } from "../aws-shared/call-spacer";
import { RegistryCredentials } from "../aws-shared/ecr-auth";
import { launchToken, workerTags } from "../aws-shared/launch-token";
import { patientCall } from "../aws-shared/patient-call";
import { fargateConfigSchema, resolveFargateSettings, type FargateSettings, type FargateTargetConfig } from "./config";
import { failureStatus, isCapacityFailure, taskStatus } from "./task-status";

export interface FargateHandle extends TargetHandle {
  key: string;
  taskArn: string;
}

/** ECS limits: DescribeTasks takes 100 tasks; container overrides are at most 8,192 characters of JSON. */
const DESCRIBE_BATCH = 100;
const OVERRIDES_MAX_CHARS = 8_192;
const KEY_TAG = "blacktree.key";

/**
 * Runs each workload as an ECS task on Fargate, launched with `clientToken` = the launch
 * key, tagged with it and with `startedBy`, so ECS is the only record: a restarted
 * orchestrator finds its tasks by handle or, from a bare key, by listing its own tasks.
 */
export class FargateTarget implements LaunchTarget<FargateTargetConfig, FargateHandle> {
  readonly name = "fargate";
  readonly configSchema = fargateConfigSchema;

  private settings!: FargateSettings;
  private ecs!: ECSClient;
  private registry!: RegistryCredentials;
  private readonly launching = new Map<string, Promise<FargateHandle>>();

  async init(config: FargateTargetConfig, ctx: PluginContext): Promise<void> {
    this.settings = resolveFargateSettings(config);
    // Credentials and region come from the standard AWS chain (env, profile, instance or task role).
    this.ecs = new ECSClient({
      ...(this.settings.region ? { region: this.settings.region } : {}),
      ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
      maxAttempts: this.settings.maxAttempts,
      retryMode: "standard",
    });
    spaceCommand(this.ecs, "RunTaskCommand", new CallSpacer(this.settings.runTaskPerSecond));
    this.registry = new RegistryCredentials(this.settings.registry ?? null, { region: this.settings.region, endpoint: this.settings.endpoint, maxAttempts: this.settings.maxAttempts });
    ctx.logger.info(`✅ fargate target ready: cluster '${this.settings.cluster}', task definition '${this.settings.taskDefinition}', RunTask ≤ ${this.settings.runTaskPerSecond}/s`);
  }

  async launch(req: LaunchRequest, ctx: PluginContext): Promise<FargateHandle> {
    const input = this.runTaskInput(req); // refuses oversized overrides before any call
    const pending = this.launching.get(req.key);
    if (pending) return pending;
    const launch = this.runTask(req.key, input, ctx);
    this.launching.set(req.key, launch);
    const forget = () => this.launching.delete(req.key); // afterwards the clientToken answers
    launch.then(forget, forget);
    return launch;
  }

  async inspect(handles: FargateHandle[], ctx: PluginContext): Promise<TargetStatus[]> {
    if (handles.length === 0) return [];
    const arnByKey = new Map(handles.filter((h) => h.taskArn).map((h) => [h.key, h.taskArn]));
    const bare = handles.filter((h) => !h.taskArn).map((h) => h.key);
    if (bare.length) for (const [key, arn] of await this.findByKeys(new Set(bare), ctx)) arnByKey.set(key, arn);
    const keyByArn = new Map([...arnByKey].map(([key, arn]) => [arn, key]));
    const statuses = new Map<string, TargetStatus>();
    const arns = [...keyByArn.keys()];
    for (let i = 0; i < arns.length; i += DESCRIBE_BATCH) {
      const out = await this.describe(arns.slice(i, i + DESCRIBE_BATCH));
      for (const task of out.tasks ?? []) statuses.set(keyByArn.get(task.taskArn!)!, taskStatus(keyByArn.get(task.taskArn!)!, task, this.settings.containerName));
      for (const f of out.failures ?? []) if (f.arn && keyByArn.has(f.arn)) statuses.set(keyByArn.get(f.arn)!, failureStatus(keyByArn.get(f.arn)!, f));
    }
    return handles.map((h) => statuses.get(h.key) ?? { key: h.key, state: "lost", reason: "no ECS task for this key" });
  }

  /** StopTask (ECS sends SIGTERM, then SIGKILL after the container's stopTimeout), then waits for STOPPED. */
  async stop(handle: FargateHandle, reason: string, ctx: PluginContext): Promise<void> {
    await this.launching.get(handle.key)?.catch(() => undefined);
    const arn = handle.taskArn ?? (await this.findByKeys(new Set([handle.key]), ctx)).get(handle.key);
    if (!arn) return;
    try {
      const out = await this.ecs.send(new StopTaskCommand({ cluster: this.settings.cluster, task: arn, reason: reason.slice(0, 255) }));
      if (out.task?.lastStatus !== "STOPPED") ctx.logger.info(`🔄 stopping ECS task for ${handle.key}: ${reason}`);
    } catch (err) {
      if (errorName(err) === "InvalidParameterException" && /not found/i.test(awsMessage(err))) return;
      throw blacktreeError("TARGET_NOT_FOUND", `ECS StopTask failed for ${handle.key}: ${awsMessage(err)}`, undefined, { retryable: true });
    }
    const end = Date.now() + this.settings.stopWaitMs;
    for (;;) {
      const task = (await this.describe([arn])).tasks?.[0];
      if (!task || task.lastStatus === "STOPPED") return void ctx.logger.info(`✅ ECS task for ${handle.key} stopped`);
      if (Date.now() >= end) return void ctx.logger.warn(`⚠️ ECS task for ${handle.key} still ${task.lastStatus} after ${this.settings.stopWaitMs} ms; ECS will finish the stop`);
      await new Promise((resolve) => setTimeout(resolve, this.settings.pollMs));
    }
  }

  /** Keys of this orchestrator's tasks not yet stopped (ListTasks by startedBy, paginated). */
  async list(ctx: PluginContext): Promise<string[]> {
    return [...(await this.tasksByKey("RUNNING", ctx)).keys()];
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.launching.values()]);
    this.ecs?.destroy();
    this.registry?.close();
  }

  /** Registry credentials (an ECR token fetched now) for the worker's one-time secrets fetch only. */
  async workerSecrets(): Promise<Record<string, string>> {
    return this.registry.workerSecrets();
  }

  private runTaskInput(req: LaunchRequest): RunTaskCommandInput {
    const s = this.settings;
    const w = req.workload;
    const named = Boolean(w.worker) && !w.image;
    // The task definition fixes the image; without one of its own, the workload runs the default task definition.
    const run = named ? containerRun(w, { workerImage: s.workerImage }) : { image: w.image ?? "", command: w.command };
    if ("refused" in run) throw blacktreeError("LAUNCH_FAILED", `cannot launch ${req.key} on fargate: ${run.refused}`, undefined, { retryable: false });
    // The workload env (plus the registry's address for a named worker): secrets travel by name only.
    const env = named ? registryEnv(s.registry, w.env ?? {}) : (w.env ?? {});
    const overrides = {
      containerOverrides: [
        {
          name: s.containerName,
          ...(run.command?.length ? { command: run.command } : {}),
          environment: Object.entries(env).map(([name, value]) => ({ name, value })),
          ...(w.cpu ? { cpu: Math.round(w.cpu * 1024) } : {}),
          ...(w.memoryMb ? { memory: Math.round(w.memoryMb) } : {}),
        },
      ],
    };
    const size = JSON.stringify(overrides).length;
    if (size > OVERRIDES_MAX_CHARS) {
      throw blacktreeError("LAUNCH_FAILED", `cannot launch ${req.key} on fargate: the container overrides are ${size} characters of JSON, over ECS's ${OVERRIDES_MAX_CHARS}; shrink the workload env or command`, undefined, { retryable: false });
    }
    const taskDefinition = (run.image && s.taskDefinitionsByImage?.[run.image]) || s.taskDefinition;
    const tags = { ...workerTags(req.key, req.labels ?? {}), ...(named ? { "blacktree.worker-image": run.image } : {}) };
    return {
      cluster: s.cluster,
      taskDefinition,
      clientToken: launchToken(req.key),
      startedBy: s.startedBy,
      count: 1,
      ...(s.capacityProviderStrategy ? { capacityProviderStrategy: s.capacityProviderStrategy } : { launchType: "FARGATE" }),
      ...(s.platformVersion ? { platformVersion: s.platformVersion } : {}),
      networkConfiguration: { awsvpcConfiguration: { subnets: s.subnets, securityGroups: s.securityGroups, assignPublicIp: s.assignPublicIp } },
      overrides,
      tags: Object.entries(tags).map(([key, value]) => ({ key, value: value.slice(0, 256) })),
      enableECSManagedTags: true,
    };
  }

  private async runTask(key: string, input: RunTaskCommandInput, ctx: PluginContext): Promise<FargateHandle> {
    let out;
    try {
      // Same clientToken on every try: a RunTask that succeeded unheard is answered with its task, not a second one.
      out = await patientCall(() => this.ecs.send(new RunTaskCommand(input)), {
        deadlineMs: this.settings.launchPatienceMs,
        onRetry: (err, n) => ctx.logger.warn(`⚠️ RunTask for ${key} ${isThrottling(err) ? "throttled" : "failed"} (${awsMessage(err)}); asking again (${n})`),
      });
    } catch (err) {
      const retryable = isTransient(err);
      throw blacktreeError("LAUNCH_FAILED", `cannot launch ${key} on fargate: ${awsMessage(err)}`, { aws: errorName(err) }, { retryable });
    }
    const task = out.tasks?.[0];
    if (task?.taskArn) {
      ctx.logger.info(`🔄 ECS task ${task.taskArn.split("/").pop()} launched for ${key}`);
      return { key, taskArn: task.taskArn };
    }
    const failure = out.failures?.[0] ?? { reason: "RunTask returned no task and no failure" };
    const retryable = isCapacityFailure(failure);
    throw blacktreeError("LAUNCH_FAILED", `cannot launch ${key} on fargate: ${failure.reason}${failure.detail ? ` (${failure.detail})` : ""}`, { aws: "RunTaskFailure", capacity: retryable }, { retryable });
  }

  private async describe(arns: string[], include?: "TAGS") {
    try {
      return await this.ecs.send(new DescribeTasksCommand({ cluster: this.settings.cluster, tasks: arns, ...(include ? { include: [include] } : {}) }));
    } catch (err) {
      // The lifecycle reads this as "target unreachable now", never as proof the tasks are gone.
      throw blacktreeError("TARGET_NOT_FOUND", `ECS DescribeTasks failed: ${awsMessage(err)}`, undefined, { retryable: true });
    }
  }

  /** Tasks of a bare key (orphans, handles from before a restart): looked up among this orchestrator's tasks. */
  private async findByKeys(keys: Set<string>, ctx: PluginContext): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (const status of ["RUNNING", "STOPPED"] as const) {
      for (const [key, task] of await this.tasksByKey(status, ctx)) if (keys.has(key) && !found.has(key)) found.set(key, task.taskArn!);
    }
    return found;
  }

  private async tasksByKey(desiredStatus: "RUNNING" | "STOPPED", _ctx: PluginContext): Promise<Map<string, Task>> {
    const arns: string[] = [];
    let nextToken: string | undefined;
    try {
      do {
        const page = await this.ecs.send(new ListTasksCommand({ cluster: this.settings.cluster, startedBy: this.settings.startedBy, desiredStatus, nextToken, maxResults: 100 }));
        arns.push(...(page.taskArns ?? []));
        nextToken = page.nextToken;
      } while (nextToken);
    } catch (err) {
      throw blacktreeError("TARGET_NOT_FOUND", `ECS ListTasks failed: ${awsMessage(err)}`, undefined, { retryable: true });
    }
    const byKey = new Map<string, Task>();
    for (let i = 0; i < arns.length; i += DESCRIBE_BATCH) {
      for (const task of (await this.describe(arns.slice(i, i + DESCRIBE_BATCH), "TAGS")).tasks ?? []) {
        const key = task.tags?.find((t) => t.key === KEY_TAG)?.value;
        if (key) byKey.set(key, task);
      }
    }
    return byKey;
  }
}

export function createFargateTarget(): FargateTarget {
  return new FargateTarget();
}
