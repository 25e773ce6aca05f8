/**
 * The deploy worker's settings, read from its environment. The deploy and stop task types
 * forward these variables from the orchestrator's environment (DEPLOYER_ENV_VARS); on ECS
 * or EC2 the worker's task definition or user data may set them instead. None is a secret:
 * credentials come from where the worker runs (the Docker socket it is given, the AWS
 * default chain: task role, instance profile, profile file), never from here.
 */
import { DeployFailure } from "./failure";

export interface DeployRequest {
  deploymentId: string;
  imageUrl: string;
  /** The port the application listens on (also handed to it as PORT); null: no port to wait for. */
  port: number | null;
  jobId: string;
  attempt: number;
}

export interface DockerDeploySettings {
  kind: "docker";
  /** The engine's Unix socket (default /var/run/docker.sock). */
  socketPath: string | null;
  /** Network mode of the application's container: `host`, `bridge` or a network's name. */
  network: string;
  /** Bind the port on the host too (`-p port:port`) on a network other than `host` (the default, as `docker run -p`). */
  publishPort: boolean;
  readyTimeoutMs: number;
  pollMs: number;
}

export interface EcsDeploySettings {
  kind: "ecs";
  cluster: string;
  region: string | null;
  endpoint: string | null;
  /** A deployment's service is `<servicePrefix><deploymentId>` (dots become hyphens). */
  servicePrefix: string;
  /** The container of the task definition that runs the image (default: its only container). */
  container: string | null;
  readyTimeoutMs: number;
  pollMs: number;
}

export type DeploySettings = DockerDeploySettings | EcsDeploySettings;

/** The variables the worker reads (the task types forward exactly these). */
export const DEPLOY_SETTING_VARS = [
  "BLACKTREE_DEPLOYER",
  "BLACKTREE_DEPLOY_TIMEOUT_MS",
  "BLACKTREE_DEPLOY_POLL_MS",
  "BLACKTREE_DEPLOY_DOCKER_SOCKET",
  "BLACKTREE_DEPLOY_DOCKER_NETWORK",
  "BLACKTREE_DEPLOY_DOCKER_PUBLISH",
  "BLACKTREE_DEPLOY_ECS_CLUSTER",
  "BLACKTREE_DEPLOY_ECS_REGION",
  "BLACKTREE_DEPLOY_ECS_ENDPOINT",
  "BLACKTREE_DEPLOY_ECS_SERVICE_PREFIX",
  "BLACKTREE_DEPLOY_ECS_CONTAINER",
] as const;

const DEFAULTS = {
  docker: { readyTimeoutMs: 60_000, pollMs: 250, network: "bridge" },
  ecs: { readyTimeoutMs: 5 * 60_000, pollMs: 5_000, servicePrefix: "blacktree-" },
} as const;

type Env = Record<string, string | undefined>;

const value = (env: Env, name: string): string | null => {
  const v = env[name]?.trim();
  return v ? v : null;
};

function milliseconds(env: Env, name: string, fallback: number, min: number): number {
  const v = value(env, name);
  if (v === null) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new DeployFailure(`${name} must be a whole number of milliseconds, at least ${min} (got '${v}')`, false);
  return Number(v);
}

export function readDeploySettings(env: Env): DeploySettings {
  const kind = value(env, "BLACKTREE_DEPLOYER") ?? "docker";
  if (kind === "docker") {
    const publish = value(env, "BLACKTREE_DEPLOY_DOCKER_PUBLISH");
    if (publish !== null && !["0", "1", "true", "false"].includes(publish)) throw new DeployFailure(`BLACKTREE_DEPLOY_DOCKER_PUBLISH must be 1 or 0 (got '${publish}')`, false);
    return {
      kind,
      socketPath: value(env, "BLACKTREE_DEPLOY_DOCKER_SOCKET"),
      network: value(env, "BLACKTREE_DEPLOY_DOCKER_NETWORK") ?? DEFAULTS.docker.network,
      publishPort: publish === null || publish === "1" || publish === "true",
      readyTimeoutMs: milliseconds(env, "BLACKTREE_DEPLOY_TIMEOUT_MS", DEFAULTS.docker.readyTimeoutMs, 1),
      pollMs: milliseconds(env, "BLACKTREE_DEPLOY_POLL_MS", DEFAULTS.docker.pollMs, 10),
    };
  }
  if (kind === "ecs") {
    const cluster = value(env, "BLACKTREE_DEPLOY_ECS_CLUSTER");
    if (!cluster) throw new DeployFailure("BLACKTREE_DEPLOYER is ecs but BLACKTREE_DEPLOY_ECS_CLUSTER is not set: name the cluster of the deployments' services", false);
    const endpoint = value(env, "BLACKTREE_DEPLOY_ECS_ENDPOINT");
    if (endpoint && !/^https?:\/\/\S+$/.test(endpoint)) throw new DeployFailure(`BLACKTREE_DEPLOY_ECS_ENDPOINT must be an http(s) URL (got '${endpoint}')`, false);
    const servicePrefix = value(env, "BLACKTREE_DEPLOY_ECS_SERVICE_PREFIX") ?? DEFAULTS.ecs.servicePrefix;
    if (!/^[A-Za-z0-9_-]{0,64}$/.test(servicePrefix)) throw new DeployFailure(`BLACKTREE_DEPLOY_ECS_SERVICE_PREFIX may hold letters, digits, '-' and '_' only (got '${servicePrefix}')`, false);
    return {
      kind,
      cluster,
      region: value(env, "BLACKTREE_DEPLOY_ECS_REGION"),
      endpoint,
      servicePrefix,
      container: value(env, "BLACKTREE_DEPLOY_ECS_CONTAINER"),
      readyTimeoutMs: milliseconds(env, "BLACKTREE_DEPLOY_TIMEOUT_MS", DEFAULTS.ecs.readyTimeoutMs, 1),
      pollMs: milliseconds(env, "BLACKTREE_DEPLOY_POLL_MS", DEFAULTS.ecs.pollMs, 10),
    };
  }
  throw new DeployFailure(`BLACKTREE_DEPLOYER must be docker or ecs (got '${kind}')`, false);
}

/** The deployment and image of this attempt, from the workload env the task types set. */
export function readDeployRequest(env: Env): DeployRequest {
  const deploymentId = value(env, "BLACKTREE_DEPLOYMENT_ID");
  if (!deploymentId) throw new DeployFailure("BLACKTREE_DEPLOYMENT_ID is not set", false);
  const port = value(env, "BLACKTREE_PORT");
  if (port !== null && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) throw new DeployFailure(`BLACKTREE_PORT must be a port number (got '${port}')`, false);
  return {
    deploymentId,
    imageUrl: value(env, "BLACKTREE_IMAGE_URL") ?? "",
    port: port === null ? null : Number(port),
    jobId: value(env, "BLACKTREE_JOB_ID") ?? "local",
    attempt: Number(value(env, "BLACKTREE_ATTEMPT") ?? "1") || 1,
  };
}
