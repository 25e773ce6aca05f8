import { registryConfigSchema, type RegistryConfig, type ValidationSchema } from "@blacktree/sdk";

/** The `config` block of the docker target in plugins.config.json. */
export interface DockerTargetConfig {
  /** Unix socket of the engine; without it (and without `host`) DOCKER_HOST or /var/run/docker.sock. */
  socketPath?: string;
  /** `tcp://host:port` of the engine, instead of a socket. */
  host?: string;
  network?: string;
  defaultImage?: string;
  /** The worker image (deploy/worker-image): runs workloads that name a `worker`. */
  workerImage?: string;
  /**
   * Docker `--security-opt` values for containers run from `workerImage` only (never a
   * plugin's own image): `["seccomp=unconfined"]` lets buildah create the user namespace
   * its RUN steps need, without --privileged, without an added capability.
   */
  workerSecurityOpt?: string[];
  /** Read-only bind mounts (`/host/path:/container/path:ro`) for containers run from `workerImage`, e.g. a host's repository mirror. */
  workerBinds?: string[];
  /** Where build workers push; credentials reach the worker only through its secrets fetch. */
  registry?: RegistryConfig;
  stopGraceMs?: number;
  retentionMs?: number;
  logMaxBytes?: number;
  labelPrefix?: string;
  /** Job types whose worker containers get the engine's socket (see DockerTargetSettings). */
  engineSocketFor?: string[];
}

export interface DockerTargetSettings {
  /** Network mode of every container; `none` unless the operator says otherwise. */
  network: string;
  defaultImage: string | null;
  workerImage: string | null;
  workerSecurityOpt: string[];
  workerBinds: string[];
  registry: RegistryConfig | null;
  /** Between SIGTERM and SIGKILL (Docker counts whole seconds: rounded up). */
  stopGraceMs: number;
  /** Finished containers are removed this long after they ended. */
  retentionMs: number;
  /** The log tail `logs()` returns. */
  logMaxBytes: number;
  /** Labels are `<labelPrefix>.key`, `.job`, `.attempt`, `.deployment`, `.type`; containers are named `<labelPrefix>-…`. */
  labelPrefix: string;
  /**
   * Job types (`deploy`, `stop`) whose worker containers get the engine's Unix socket at
   * /var/run/docker.sock, for the deploy worker's Docker deployer. Empty by default: the
   * socket is root on the host, so no other worker ever gets it.
   */
  engineSocketFor: string[];
  /** The host path of that socket: `socketPath`, else /var/run/docker.sock. */
  engineSocketPath: string;
}

const DEFAULT_ENGINE_SOCKET = "/var/run/docker.sock";

export const dockerTargetDefaults = {
  network: "none",
  stopGraceMs: 10_000,
  retentionMs: 60 * 60_000,
  logMaxBytes: 256 * 1024,
  labelPrefix: "blacktree",
} as const;

export const dockerTargetConfigSchema: ValidationSchema = {
  $$strict: true,
  socketPath: { type: "string", empty: false, optional: true },
  host: { type: "string", empty: false, optional: true, pattern: /^(tcp|http|https):\/\/[^\s]+$/ },
  network: { type: "string", empty: false, default: dockerTargetDefaults.network },
  defaultImage: { type: "string", empty: false, optional: true },
  workerImage: { type: "string", empty: false, optional: true },
  workerSecurityOpt: { type: "array", optional: true, items: { type: "string", empty: false, pattern: /^(seccomp|apparmor|label|no-new-privileges)([=:].+)?$/ } },
  workerBinds: { type: "array", optional: true, items: { type: "string", pattern: /^\/[^:]+:\/[^:]+:ro$/, messages: { stringPattern: "must be '/host/path:/container/path:ro' (read-only only)" } } },
  registry: registryConfigSchema,
  stopGraceMs: { type: "number", integer: true, min: 0, default: dockerTargetDefaults.stopGraceMs },
  retentionMs: { type: "number", integer: true, min: 1000, default: dockerTargetDefaults.retentionMs },
  logMaxBytes: { type: "number", integer: true, positive: true, default: dockerTargetDefaults.logMaxBytes },
  labelPrefix: { type: "string", pattern: /^[a-z][a-z0-9-]{0,30}$/, default: dockerTargetDefaults.labelPrefix },
  engineSocketFor: { type: "array", optional: true, items: { type: "string", empty: false } },
};

/** Defaults are applied here too: a host may hand over a config it did not run through the schema. */
export function resolveSettings(config: DockerTargetConfig): DockerTargetSettings {
  return {
    network: config.network ?? dockerTargetDefaults.network,
    defaultImage: config.defaultImage ?? null,
    workerImage: config.workerImage ?? null,
    workerSecurityOpt: config.workerSecurityOpt ?? [],
    workerBinds: config.workerBinds ?? [],
    registry: config.registry ?? null,
    stopGraceMs: config.stopGraceMs ?? dockerTargetDefaults.stopGraceMs,
    retentionMs: config.retentionMs ?? dockerTargetDefaults.retentionMs,
    logMaxBytes: config.logMaxBytes ?? dockerTargetDefaults.logMaxBytes,
    labelPrefix: config.labelPrefix ?? dockerTargetDefaults.labelPrefix,
    engineSocketFor: config.engineSocketFor ?? [],
    engineSocketPath: config.socketPath ?? DEFAULT_ENGINE_SOCKET,
  };
}
