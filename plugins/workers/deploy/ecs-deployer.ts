import {
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
  type RegisterTaskDefinitionCommandInput,
  type Service,
} from "@aws-sdk/client-ecs";
import type { Deployer, DeployLog } from "./deployer";
import { DeployFailure, messageOf } from "./failure";
import type { DeployRequest, EcsDeploySettings } from "./settings";

/** A deployment's ECS service: `<prefix><deploymentId>`, dots (not allowed in service names) as hyphens. */
export function serviceName(prefix: string, deploymentId: string): string {
  return `${prefix}${deploymentId.replace(/\./g, "-")}`;
}

/** The fields of a described task definition that RegisterTaskDefinition takes back. */
const REGISTER_FIELDS = [
  "family",
  "taskRoleArn",
  "executionRoleArn",
  "networkMode",
  "volumes",
  "placementConstraints",
  "requiresCompatibilities",
  "cpu",
  "memory",
  "pidMode",
  "ipcMode",
  "proxyConfiguration",
  "inferenceAccelerators",
  "ephemeralStorage",
  "runtimePlatform",
  "enableFaultInjection",
] as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The ECS deployer: the deployment's service must exist (created by the operator, with its
 * network, load balancer and roles); a deploy registers a revision of the service's current
 * task definition with the new image, points the service at it and waits for a steady
 * state. A rollout that fails (ECS reports it FAILED, or it is not steady in time) points
 * the service back at the previous revision. `stop` scales the service to zero.
 */
export class EcsDeployer implements Deployer {
  private readonly ecs: ECSClient;
  /** The service and revision to go back to while a rollout is under way, for `abort`. */
  private underWay: { service: string; previous: string; desiredCount: number } | null = null;

  constructor(
    private readonly settings: EcsDeploySettings,
    private readonly log: DeployLog,
  ) {
    this.ecs = new ECSClient({ region: settings.region ?? undefined, endpoint: settings.endpoint ?? undefined, maxAttempts: 5 });
  }

  async deploy(req: DeployRequest): Promise<string> {
    if (!req.imageUrl) throw new DeployFailure("the deploy names no image", false);
    const name = serviceName(this.settings.servicePrefix, req.deploymentId);
    const service = await this.service(name);
    if (!service) throw new DeployFailure(`ECS service ${name} does not exist in cluster ${this.settings.cluster}: create it once (its network, load balancer and roles are the operator's), then deploy`, false);
    const previous = service.taskDefinition!;
    const revision = await this.registerRevision(previous, req.imageUrl);
    const desiredCount = service.desiredCount ? service.desiredCount : 1;
    this.underWay = { service: name, previous, desiredCount: service.desiredCount ?? 0 };
    this.log.progress(`updating service ${name} to ${revision} (${desiredCount} task(s))`);
    await this.call("UpdateService", () => this.ecs.send(new UpdateServiceCommand({ cluster: this.settings.cluster, service: name, taskDefinition: revision, desiredCount })));
    try {
      await this.waitForSteadyState(name, revision, desiredCount);
    } catch (err) {
      await this.rollBack();
      throw err;
    }
    this.underWay = null;
    return `deployed ${req.imageUrl} to service ${name} as ${revision}: steady with ${desiredCount} task(s)`;
  }

  async stop(deploymentId: string): Promise<string> {
    const name = serviceName(this.settings.servicePrefix, deploymentId);
    const service = await this.service(name);
    if (!service) return `ECS service ${name} does not exist: nothing to stop`;
    this.log.progress(`scaling service ${name} to 0 tasks`);
    await this.call("UpdateService", () => this.ecs.send(new UpdateServiceCommand({ cluster: this.settings.cluster, service: name, desiredCount: 0 })));
    const deadline = Date.now() + this.settings.readyTimeoutMs;
    for (;;) {
      const now = await this.service(name);
      if (!now || (now.runningCount ?? 0) === 0) return `stopped service ${name}: no task runs`;
      if (Date.now() >= deadline) throw new DeployFailure(`service ${name} still runs ${now.runningCount} task(s) ${this.settings.readyTimeoutMs} ms after it was scaled to 0`);
      await sleep(this.settings.pollMs);
    }
  }

  async abort(): Promise<void> {
    await this.rollBack();
  }

  private async rollBack(): Promise<void> {
    const underWay = this.underWay;
    this.underWay = null;
    if (!underWay) return;
    try {
      await this.call("UpdateService", () =>
        this.ecs.send(new UpdateServiceCommand({ cluster: this.settings.cluster, service: underWay.service, taskDefinition: underWay.previous, desiredCount: underWay.desiredCount })),
      );
      this.log.progress(`rolled service ${underWay.service} back to ${underWay.previous}`);
    } catch (err) {
      this.log.warn(`could not roll service ${underWay.service} back to ${underWay.previous}: ${messageOf(err)}`);
    }
  }

  /** The service, or null when it does not exist (or was deleted: INACTIVE). */
  private async service(name: string): Promise<Service | null> {
    const out = await this.call("DescribeServices", () => this.ecs.send(new DescribeServicesCommand({ cluster: this.settings.cluster, services: [name] })));
    const service = out.services?.find((s) => s.serviceName === name);
    return service && service.status !== "INACTIVE" ? service : null;
  }

  /** A new revision of the service's task definition with `image` in the deployment's container; everything else as it was. */
  private async registerRevision(current: string, image: string): Promise<string> {
    const described = await this.call("DescribeTaskDefinition", () => this.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: current, include: ["TAGS"] })));
    const base = described.taskDefinition;
    if (!base?.containerDefinitions?.length) throw new DeployFailure(`task definition ${current} has no container definitions`, false);
    const containers = base.containerDefinitions;
    const wanted = this.settings.container;
    const target = wanted ? containers.find((c) => c.name === wanted) : containers.length === 1 ? containers[0] : null;
    if (!target) {
      const names = containers.map((c) => c.name).join(", ");
      throw new DeployFailure(wanted ? `task definition ${current} has no container named ${wanted} (it has ${names})` : `task definition ${current} has several containers (${names}): set BLACKTREE_DEPLOY_ECS_CONTAINER to the one that runs the image`, false);
    }
    const input: RegisterTaskDefinitionCommandInput = {
      family: base.family!,
      containerDefinitions: containers.map((c) => (c === target ? { ...c, image } : c)),
    };
    for (const field of REGISTER_FIELDS) if (base[field] !== undefined) (input as unknown as Record<string, unknown>)[field] = base[field];
    if (described.tags?.length) input.tags = described.tags;
    const out = await this.call("RegisterTaskDefinition", () => this.ecs.send(new RegisterTaskDefinitionCommand(input)));
    const arn = out.taskDefinition?.taskDefinitionArn;
    if (!arn) throw new DeployFailure("RegisterTaskDefinition answered without a task definition ARN");
    this.log.progress(`registered ${arn} (container ${target.name}: ${image})`);
    return arn;
  }

  /** Steady: the new revision's deployment is the only one, its rollout completed, every desired task running. */
  private async waitForSteadyState(name: string, revision: string, desiredCount: number): Promise<void> {
    const deadline = Date.now() + this.settings.readyTimeoutMs;
    this.log.progress(`waiting up to ${this.settings.readyTimeoutMs} ms for service ${name} to be steady`);
    for (;;) {
      const service = await this.service(name);
      if (!service) throw new DeployFailure(`service ${name} was deleted during the deploy`);
      const deployments = service.deployments ?? [];
      const ours = deployments.find((d) => d.taskDefinition === revision);
      if (!ours) throw new DeployFailure(`service ${name} no longer deploys ${revision}: another update replaced it`);
      if (ours.rolloutState === "FAILED") throw new DeployFailure(`the rollout of ${revision} on service ${name} failed: ${ours.rolloutStateReason ?? "no reason given"}`);
      const settled = deployments.length === 1 && (ours.rolloutState ?? "COMPLETED") === "COMPLETED";
      if (settled && ours.runningCount === desiredCount && service.runningCount === desiredCount) return;
      if (Date.now() >= deadline) {
        throw new DeployFailure(`service ${name} was not steady on ${revision} within ${this.settings.readyTimeoutMs} ms (${ours.runningCount ?? 0}/${desiredCount} task(s) running, rollout ${ours.rolloutState ?? "unknown"})`);
      }
      await sleep(this.settings.pollMs);
    }
  }

  /** ECS errors become failures naming the call; the SDK has retried throttling already. */
  private async call<T>(action: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      if (err instanceof DeployFailure) throw err;
      const name = (err as { name?: string })?.name;
      const retryable = name === "AccessDeniedException" || name === "ClientException" || name === "InvalidParameterException" ? false : undefined;
      throw new DeployFailure(`ECS ${action} failed: ${name ? `${name}: ` : ""}${messageOf(err)}`, retryable);
    }
  }
}
