import { registryConfigSchema, type RegistryConfig, type ValidationSchema } from "@blacktree/sdk";

/** The `config` block of the fargate target in plugins.config.json. */
export interface FargateTargetConfig {
  cluster: string;
  /** Family, family:revision or ARN; it fixes the image (ECS overrides cannot change it). */
  taskDefinition: string;
  /** Other task definitions by workload image, for task types whose workloads name one. */
  taskDefinitionsByImage?: Record<string, string>;
  /**
   * The worker image (deploy/worker-image, pushed to a registry Fargate pulls from): what
   * workloads that name a `worker` run. ECS cannot override a task definition's image, so
   * the task definition that runs it is `taskDefinitionsByImage[workerImage]`, else
   * `taskDefinition` — its worker container must use this image. RunTask names it in the
   * task's `blacktree.worker-image` tag.
   */
  workerImage?: string;
  /** Where build workers push (ECR: `ecr: true`, the token is fetched at the worker's secrets fetch). */
  registry?: RegistryConfig;
  /** The essential container that runs the worker: its overrides carry the env and command; its exit code is the job's. */
  containerName: string;
  subnets: string[];
  securityGroups?: string[];
  assignPublicIp?: "ENABLED" | "DISABLED";
  /** Instead of launch type FARGATE (e.g. FARGATE_SPOT with a FARGATE base). */
  capacityProviderStrategy?: Array<{ capacityProvider: string; weight?: number; base?: number }>;
  platformVersion?: string;
  /** ECS `startedBy` (≤ 36 characters): how `list()` finds this orchestrator's tasks. */
  startedBy?: string;
  region?: string;
  /** Another ECS endpoint (the test emulator, a VPC endpoint). */
  endpoint?: string;
  /** RunTask calls per second, retries included. */
  runTaskPerSecond?: number;
  /** SDK attempts per call (standard retry mode). */
  maxAttempts?: number;
  /** How long a launch keeps retrying throttling and dropped connections before it fails (retryable). */
  launchPatienceMs?: number;
  /** How long `stop` waits for the task to reach STOPPED. */
  stopWaitMs?: number;
  /** Poll period while waiting for STOPPED. */
  pollMs?: number;
}

type OptionalSettings = "taskDefinitionsByImage" | "securityGroups" | "capacityProviderStrategy" | "platformVersion" | "region" | "endpoint" | "workerImage" | "registry";
export type FargateSettings = Required<Omit<FargateTargetConfig, OptionalSettings>> & Pick<FargateTargetConfig, OptionalSettings>;

export const fargateDefaults = {
  assignPublicIp: "DISABLED",
  startedBy: "blacktree",
  runTaskPerSecond: 20,
  maxAttempts: 5,
  launchPatienceMs: 45_000,
  stopWaitMs: 60_000,
  pollMs: 1_000,
} as const;

export const fargateConfigSchema: ValidationSchema = {
  $$strict: true,
  cluster: { type: "string", empty: false },
  taskDefinition: { type: "string", empty: false },
  taskDefinitionsByImage: { type: "record", optional: true, key: { type: "string" }, value: { type: "string", empty: false } },
  workerImage: { type: "string", empty: false, optional: true },
  registry: registryConfigSchema,
  containerName: { type: "string", empty: false },
  subnets: { type: "array", min: 1, items: { type: "string", empty: false } },
  securityGroups: { type: "array", optional: true, items: { type: "string", empty: false } },
  assignPublicIp: { type: "enum", values: ["ENABLED", "DISABLED"], optional: true },
  capacityProviderStrategy: {
    type: "array",
    optional: true,
    min: 1,
    items: { type: "object", strict: true, props: { capacityProvider: { type: "string", empty: false }, weight: { type: "number", integer: true, min: 0, optional: true }, base: { type: "number", integer: true, min: 0, optional: true } } },
  },
  platformVersion: { type: "string", empty: false, optional: true },
  startedBy: { type: "string", empty: false, max: 36, optional: true },
  region: { type: "string", empty: false, optional: true },
  endpoint: { type: "string", pattern: /^https?:\/\/\S+$/, optional: true },
  runTaskPerSecond: { type: "number", positive: true, max: 1000, optional: true },
  maxAttempts: { type: "number", integer: true, min: 1, max: 20, optional: true },
  launchPatienceMs: { type: "number", integer: true, min: 0, optional: true },
  stopWaitMs: { type: "number", integer: true, min: 0, optional: true },
  pollMs: { type: "number", integer: true, min: 10, optional: true },
};

/** Defaults applied here too: a host may hand over a config it did not run through the schema. */
export function resolveFargateSettings(config: FargateTargetConfig): FargateSettings {
  return { ...fargateDefaults, ...dropUndefined(config) } as FargateSettings;
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
