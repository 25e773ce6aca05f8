import { registryConfigSchema, type RegistryConfig, type ValidationSchema } from "@blacktree/sdk";

/** The `config` block of the ec2 target in plugins.config.json. */
export interface Ec2TargetConfig {
  /** An AMI with docker, curl and the AWS CLI (the user data runs the worker container, tags its exit code, powers off). */
  imageId: string;
  instanceType: string;
  subnetId?: string;
  securityGroupIds?: string[];
  /** Instance profile ARN (`arn:aws:iam::…`) or name; its role needs ec2:CreateTags on the instance (the exit code tag) and whatever pulls the image. */
  instanceProfile?: string;
  /** Image when the workload names none. */
  defaultImage?: string;
  /** The worker image the user data runs for workloads that name a `worker` (an ECR image is pulled after a login with the instance's own role). */
  workerImage?: string;
  /** Docker `--security-opt` values for the worker image's container (`seccomp=unconfined`: buildah's RUN steps, see the README). */
  workerSecurityOpt?: string[];
  /** Where build workers push (ECR: `ecr: true`, the token is fetched at the worker's secrets fetch). */
  registry?: RegistryConfig;
  /** The `blacktree.owner` tag: how `list()` finds this orchestrator's instances. */
  owner?: string;
  region?: string;
  endpoint?: string;
  /** RunInstances calls per second, retries included (EC2's own bucket refills at 2/s by default). */
  runInstancesPerSecond?: number;
  maxAttempts?: number;
  launchPatienceMs?: number;
}

export type Ec2Settings = Ec2TargetConfig & Required<Pick<Ec2TargetConfig, "owner" | "runInstancesPerSecond" | "maxAttempts" | "launchPatienceMs">>;

export const ec2Defaults = { owner: "blacktree", runInstancesPerSecond: 2, maxAttempts: 5, launchPatienceMs: 45_000 } as const;

export const ec2ConfigSchema: ValidationSchema = {
  $$strict: true,
  imageId: { type: "string", empty: false },
  instanceType: { type: "string", empty: false },
  subnetId: { type: "string", empty: false, optional: true },
  securityGroupIds: { type: "array", optional: true, items: { type: "string", empty: false } },
  instanceProfile: { type: "string", empty: false, optional: true },
  defaultImage: { type: "string", empty: false, optional: true },
  workerImage: { type: "string", empty: false, optional: true },
  workerSecurityOpt: { type: "array", optional: true, items: { type: "string", empty: false, pattern: /^(seccomp|apparmor|label|no-new-privileges)([=:][A-Za-z0-9_.\/:=-]+)?$/ } },
  registry: registryConfigSchema,
  owner: { type: "string", empty: false, max: 256, optional: true },
  region: { type: "string", empty: false, optional: true },
  endpoint: { type: "string", pattern: /^https?:\/\/\S+$/, optional: true },
  runInstancesPerSecond: { type: "number", positive: true, max: 1000, optional: true },
  maxAttempts: { type: "number", integer: true, min: 1, max: 20, optional: true },
  launchPatienceMs: { type: "number", integer: true, min: 0, optional: true },
};

export function resolveEc2Settings(config: Ec2TargetConfig): Ec2Settings {
  const set = Object.fromEntries(Object.entries(config ?? {}).filter(([, v]) => v !== undefined));
  return { ...ec2Defaults, ...set } as Ec2Settings;
}
