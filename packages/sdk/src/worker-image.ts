/**
 * How a container target runs a named worker (`Workload.worker`) from its worker image,
 * and how targets hand a worker the registry it pushes to. One place for both, so every
 * target (and every third-party worker image) agrees.
 */

/** The worker image's entry point: `blacktree-worker <name>` runs the worker of that name. */
export const WORKER_IMAGE_ENTRYPOINT = "blacktree-worker";

/** Worker names: a letter, then letters, digits, `.`, `_`, `-` (they become argv and file names). */
export const WORKER_NAME_PATTERN = /^[a-z][a-z0-9._-]{0,62}$/;

/** The reference workers the built-in task types name; the process and pool targets run the host's copy. */
export const REFERENCE_WORKERS = ["build-worker", "deploy-worker"] as const;
export type ReferenceWorker = (typeof REFERENCE_WORKERS)[number];

export function isReferenceWorker(name: string): name is ReferenceWorker {
  return (REFERENCE_WORKERS as readonly string[]).includes(name);
}

/** The argv a container target runs in its `workerImage` for `Workload.worker`. */
export function workerImageCommand(worker: string): string[] {
  if (!WORKER_NAME_PATTERN.test(worker)) throw new Error(`workerImageCommand: '${worker}' is not a worker name`);
  return [WORKER_IMAGE_ENTRYPOINT, worker];
}

/** A target's `registry` config: where a build worker pushes. Credentials never live here for ECR. */
export interface RegistryConfig {
  /** `host[:port]` of the registry (ECR: `<account>.dkr.ecr.<region>.amazonaws.com`). */
  url: string;
  /** Put before the image's repository (`team/` → `host/team/<deployment>:<tag>`). */
  repositoryPrefix?: string;
  /** Plain HTTP or a self-signed certificate (a local registry): pushes skip TLS verification. */
  insecure?: boolean;
  /** Basic credentials (values from `${ENV}` in plugins.config.json); delivered only through the worker's secrets fetch. */
  username?: string;
  password?: string;
  /** ECR: the target fetches a token with GetAuthorizationToken at the worker's secrets fetch. */
  ecr?: boolean;
}

/** fastest-validator schema of `registry` in a container target's config. */
export const registryConfigSchema = {
  type: "object",
  optional: true,
  strict: true,
  props: {
    url: { type: "string", empty: false, max: 255, pattern: /^[A-Za-z0-9.-]+(:\d{1,5})?$/ },
    repositoryPrefix: { type: "string", optional: true, max: 200, pattern: /^([a-z0-9]+([._-][a-z0-9]+)*\/)*$/ },
    insecure: { type: "boolean", optional: true },
    username: { type: "string", optional: true, empty: false },
    password: { type: "string", optional: true, empty: false },
    ecr: { type: "boolean", optional: true },
  },
} as const;

/** Names of the secrets a worker receives with its one-time fetch when the target has registry credentials. */
export const REGISTRY_SECRET_NAMES = { username: "registryUsername", password: "registryPassword" } as const;

/**
 * The worker's environment for a registry: the address and prefix only (never credentials),
 * plus the names of the registry secrets to add to BLACKTREE_SECRETS when there are any.
 */
export function registryEnv(registry: RegistryConfig | null | undefined, env: Record<string, string>): Record<string, string> {
  if (!registry) return env;
  const hasCredentials = registry.ecr === true || (registry.username !== undefined && registry.password !== undefined);
  const secrets = (env.BLACKTREE_SECRETS ?? "").split(",").filter(Boolean);
  if (hasCredentials) for (const name of Object.values(REGISTRY_SECRET_NAMES)) if (!secrets.includes(name)) secrets.push(name);
  return {
    ...env,
    BLACKTREE_REGISTRY: registry.url,
    BLACKTREE_REGISTRY_PREFIX: registry.repositoryPrefix ?? "",
    BLACKTREE_REGISTRY_INSECURE: registry.insecure ? "true" : "false",
    BLACKTREE_SECRETS: secrets.join(","),
  };
}

/** The basic credentials of a non-ECR registry, for the worker's secrets fetch; null without any. */
export function basicRegistrySecrets(registry: RegistryConfig | null | undefined): Record<string, string> | null {
  if (!registry || registry.ecr || registry.username === undefined || registry.password === undefined) return null;
  return { [REGISTRY_SECRET_NAMES.username]: registry.username, [REGISTRY_SECRET_NAMES.password]: registry.password };
}

/** What a container target runs: the image and argv (undefined: the image's own CMD). */
export interface ContainerRun {
  image: string;
  command?: string[];
}

/**
 * The one rule every container target follows: the workload's own `image` (+ `command`)
 * first; else a named `worker` from the target's `workerImage`; else `defaultImage`.
 * Returns why it cannot run otherwise (a config error: not worth a retry).
 */
export function containerRun(workload: { worker?: string; image?: string; command?: string[] }, target: { workerImage?: string | null; defaultImage?: string | null }): ContainerRun | { refused: string } {
  if (workload.image) return { image: workload.image, ...(workload.command?.length ? { command: workload.command } : {}) };
  if (workload.worker) {
    if (!target.workerImage) return { refused: `the workload names worker '${workload.worker}' and the target has no workerImage` };
    if (!WORKER_NAME_PATTERN.test(workload.worker)) return { refused: `'${workload.worker}' is not a worker name` };
    return { image: target.workerImage, command: workload.command?.length ? workload.command : workerImageCommand(workload.worker) };
  }
  if (target.defaultImage) return { image: target.defaultImage, ...(workload.command?.length ? { command: workload.command } : {}) };
  return { refused: "the workload names no image or worker and the target has no defaultImage" };
}
