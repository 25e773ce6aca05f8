import { DescribeInstancesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand, type Filter, type Instance, type RunInstancesCommandInput } from "@aws-sdk/client-ec2";
import { blacktreeError, containerRun, registryEnv, type LaunchRequest, type LaunchTarget, type PluginContext, type TargetHandle, type TargetStatus } from "@blacktree/sdk";
import { awsMessage, errorName, isThrottling, isTransient } from "../aws-shared/aws-errors";
import { CallSpacer, spaceCommand } from "../aws-shared/call-spacer";
import { RegistryCredentials } from "../aws-shared/ecr-auth";
import { launchToken, workerTags } from "../aws-shared/launch-token";
import { patientCall } from "../aws-shared/patient-call";
import { ec2ConfigSchema, resolveEc2Settings, type Ec2Settings, type Ec2TargetConfig } from "./config";
import { instanceStatus, preferred } from "./instance-status";
import { USER_DATA_MAX_BYTES, workerUserData } from "./user-data";

export interface Ec2Handle extends TargetHandle {
  key: string;
  instanceId: string;
}

/**
 * Keys per DescribeInstances: EC2 takes at most 200 values per filter; 100 matches the
 * lifecycle's inspect batch, so one reconcile batch is one call (plus pages).
 */
const KEYS_PER_DESCRIBE = 100;
const KEY_TAG = "blacktree.key";
const OWNER_TAG = "blacktree.owner";
/** Capacity errors are answered with HTTP 500 by EC2: not worth our own patient retries (fallback or a later attempt is). */
const CAPACITY = new Set(["InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity", "InsufficientReservedInstanceCapacity"]);

/**
 * Runs each workload on its own EC2 instance: the user data runs the worker container,
 * tags its exit code and powers off; the instance then terminates itself. Instances are
 * launched with ClientToken = the key and tagged with it, so EC2 is the only record.
 */
export class Ec2Target implements LaunchTarget<Ec2TargetConfig, Ec2Handle> {
  readonly name = "ec2";
  readonly configSchema = ec2ConfigSchema;

  private settings!: Ec2Settings;
  private ec2!: EC2Client;
  private registry!: RegistryCredentials;
  private region = "";
  private readonly launching = new Map<string, Promise<Ec2Handle>>();

  async init(config: Ec2TargetConfig, ctx: PluginContext): Promise<void> {
    this.settings = resolveEc2Settings(config);
    // Credentials and region come from the standard AWS chain.
    this.ec2 = new EC2Client({
      ...(this.settings.region ? { region: this.settings.region } : {}),
      ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
      maxAttempts: this.settings.maxAttempts,
      retryMode: "standard",
    });
    // The user data names the region for its CreateTags call; without one, launches are refused (not the whole node).
    this.region = await this.ec2.config.region().catch((err: Error) => {
      ctx.logger.warn(`⚠️ ec2 target: no AWS region (${err.message}); launches will be refused until one is configured`);
      return "";
    });
    spaceCommand(this.ec2, "RunInstancesCommand", new CallSpacer(this.settings.runInstancesPerSecond));
    this.registry = new RegistryCredentials(this.settings.registry ?? null, { region: this.settings.region, endpoint: this.settings.endpoint, maxAttempts: this.settings.maxAttempts });
    ctx.logger.info(`✅ ec2 target ready: ${this.settings.instanceType} from ${this.settings.imageId} in ${this.region}`);
  }

  async launch(req: LaunchRequest, ctx: PluginContext): Promise<Ec2Handle> {
    const input = this.runInstancesInput(req); // refuses what EC2 would, before any call
    const pending = this.launching.get(req.key);
    if (pending) return pending;
    const launch = this.runInstance(req.key, input, ctx);
    this.launching.set(req.key, launch);
    const forget = () => this.launching.delete(req.key); // afterwards the ClientToken answers
    launch.then(forget, forget);
    return launch;
  }

  /** By key tag, in batches of 100 keys per DescribeInstances: handles from before a restart and bare keys work alike. */
  async inspect(handles: Ec2Handle[]): Promise<TargetStatus[]> {
    if (handles.length === 0) return [];
    const keys = [...new Set(handles.map((h) => h.key))];
    const byKey = new Map<string, Instance>();
    for (let i = 0; i < keys.length; i += KEYS_PER_DESCRIBE) {
      for (const [key, inst] of await this.instancesByKey([{ Name: `tag:${KEY_TAG}`, Values: keys.slice(i, i + KEYS_PER_DESCRIBE) }])) byKey.set(key, inst);
    }
    return handles.map((h) => {
      const inst = byKey.get(h.key);
      return inst ? instanceStatus(h.key, inst) : { key: h.key, state: "lost", reason: "no EC2 instance for this key (never launched, or terminated long ago)" };
    });
  }

  /** TerminateInstances: EC2 shuts the instance down (docker gives the container SIGTERM, then kills it) and it is gone. */
  async stop(handle: Ec2Handle, reason: string, ctx: PluginContext): Promise<void> {
    await this.launching.get(handle.key)?.catch(() => undefined);
    const live = [...(await this.instancesByKey([{ Name: `tag:${KEY_TAG}`, Values: [handle.key] }, { Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped"] }])).values()];
    if (live.length === 0) return;
    ctx.logger.info(`🔄 terminating instance ${live.map((i) => i.InstanceId).join(", ")} for ${handle.key}: ${reason}`);
    try {
      await this.ec2.send(new TerminateInstancesCommand({ InstanceIds: live.map((i) => i.InstanceId!) }));
    } catch (err) {
      if (errorName(err) === "InvalidInstanceID.NotFound") return;
      throw blacktreeError("TARGET_NOT_FOUND", `EC2 TerminateInstances failed for ${handle.key}: ${awsMessage(err)}`, undefined, { retryable: true });
    }
    ctx.logger.info(`✅ instance for ${handle.key} terminating`);
  }

  /** Keys of this orchestrator's instances still pending or running. */
  async list(): Promise<string[]> {
    return [...(await this.instancesByKey([{ Name: `tag:${OWNER_TAG}`, Values: [this.settings.owner] }, { Name: "instance-state-name", Values: ["pending", "running"] }])).keys()];
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.launching.values()]);
    this.ec2?.destroy();
    this.registry?.close();
  }

  /** Registry credentials (an ECR token fetched now) for the worker's one-time secrets fetch only. */
  async workerSecrets(): Promise<Record<string, string>> {
    return this.registry.workerSecrets();
  }

  private runInstancesInput(req: LaunchRequest): RunInstancesCommandInput {
    const s = this.settings;
    const refuse = (why: string) => blacktreeError("LAUNCH_FAILED", `cannot launch ${req.key} on ec2: ${why}`, undefined, { retryable: false });
    if (!this.region) throw refuse("no AWS region is configured (config `region` or AWS_REGION)");
    const run = containerRun(req.workload, { workerImage: s.workerImage, defaultImage: s.defaultImage });
    if ("refused" in run) throw refuse(run.refused);
    const named = Boolean(req.workload.worker) && !req.workload.image;
    // Only a named worker learns the registry's address (and the names of its secrets); never a value.
    const workload = { ...req.workload, command: run.command, env: named ? registryEnv(s.registry, req.workload.env ?? {}) : (req.workload.env ?? {}) };
    let script: string;
    try {
      script = workerUserData(req.key, run.image, workload, this.region, named ? (s.workerSecurityOpt ?? []) : []);
    } catch (err) {
      throw refuse((err as Error).message);
    }
    const bytes = Buffer.byteLength(script, "utf8");
    if (bytes > USER_DATA_MAX_BYTES) throw refuse(`the user data is ${bytes} bytes, over EC2's ${USER_DATA_MAX_BYTES}; shrink the workload env or command`);
    const tags = { ...workerTags(req.key, req.labels ?? {}), [OWNER_TAG]: s.owner };
    const profile = s.instanceProfile ? (s.instanceProfile.startsWith("arn:") ? { Arn: s.instanceProfile } : { Name: s.instanceProfile }) : undefined;
    return {
      ImageId: s.imageId,
      InstanceType: s.instanceType as RunInstancesCommandInput["InstanceType"],
      MinCount: 1,
      MaxCount: 1,
      ClientToken: launchToken(req.key),
      // The SDK sends UserData as given: EC2 wants base64.
      UserData: Buffer.from(script, "utf8").toString("base64"),
      InstanceInitiatedShutdownBehavior: "terminate",
      ...(s.subnetId ? { SubnetId: s.subnetId } : {}),
      ...(s.securityGroupIds?.length ? { SecurityGroupIds: s.securityGroupIds } : {}),
      ...(profile ? { IamInstanceProfile: profile } : {}),
      TagSpecifications: [{ ResourceType: "instance", Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value: Value.slice(0, 256) })) }],
    };
  }

  private async runInstance(key: string, input: RunInstancesCommandInput, ctx: PluginContext): Promise<Ec2Handle> {
    try {
      const out = await patientCall(() => this.ec2.send(new RunInstancesCommand(input)), {
        deadlineMs: this.settings.launchPatienceMs,
        retryIf: (err) => isTransient(err) && !CAPACITY.has(errorName(err)),
        onRetry: (err, n) => ctx.logger.warn(`⚠️ RunInstances for ${key} ${isThrottling(err) ? "throttled" : "failed"} (${awsMessage(err)}); asking again (${n})`),
      });
      const id = out.Instances?.[0]?.InstanceId;
      if (!id) throw blacktreeError("LAUNCH_FAILED", `cannot launch ${key} on ec2: RunInstances returned no instance`, undefined, { retryable: true });
      ctx.logger.info(`🔄 instance ${id} launched for ${key}`);
      return { key, instanceId: id };
    } catch (err) {
      if ((err as { type?: string }).type === "LAUNCH_FAILED") throw err;
      const name = errorName(err);
      const capacity = CAPACITY.has(name);
      throw blacktreeError("LAUNCH_FAILED", `cannot launch ${key} on ec2: ${awsMessage(err)}`, { aws: name, capacity }, { retryable: capacity || isTransient(err) });
    }
  }

  private async instancesByKey(filters: Filter[]): Promise<Map<string, Instance>> {
    const byKey = new Map<string, Instance>();
    let NextToken: string | undefined;
    try {
      do {
        const page = await this.ec2.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 1000, NextToken }));
        for (const inst of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
          const key = inst.Tags?.find((t) => t.Key === KEY_TAG)?.Value;
          if (key) byKey.set(key, byKey.has(key) ? preferred(byKey.get(key)!, inst) : inst);
        }
        NextToken = page.NextToken;
      } while (NextToken);
    } catch (err) {
      // The lifecycle reads this as "target unreachable now", never as proof the instances are gone.
      throw blacktreeError("TARGET_NOT_FOUND", `EC2 DescribeInstances failed: ${awsMessage(err)}`, undefined, { retryable: true });
    }
    return byKey;
  }
}

export function createEc2Target(): Ec2Target {
  return new Ec2Target();
}
