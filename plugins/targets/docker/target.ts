import Docker from "dockerode";
import { basicRegistrySecrets, blacktreeError, containerRun, registryEnv, type ContainerRun, type LaunchRequest, type LaunchTarget, type PluginContext, type TargetHandle, type TargetStatus } from "@blacktree/sdk";
import { dockerTargetConfigSchema, resolveSettings, type DockerTargetConfig, type DockerTargetSettings } from "./config";
import { engineError, launchError, statusOf } from "./engine-errors";
import { demux, tailLines } from "./log-stream";
import { containerLabels, containerName, keyLabel } from "./naming";

export interface DockerHandle extends TargetHandle {
  key: string;
  /** The container's name, derived from the key: enough to find it again after a restart. */
  name: string;
  id: string;
}

/** `docker logs --tail`: enough lines for any logMaxBytes tail we keep. */
const LOG_TAIL_LINES = 5_000;
/** Housekeeping (removing finished containers past retention) runs at most this often. */
const HOUSEKEEPING_EVERY_MS = 30_000;
const LIVE_STATES = ["created", "running", "restarting", "paused"];

type Summary = Docker.ContainerInfo;

/**
 * Runs each workload in its own container, named and labelled from the launch key. The
 * engine is the only record: a restarted orchestrator finds its containers by name and
 * label, so nothing is kept in memory between calls except launches under way.
 */
export class DockerTarget implements LaunchTarget<DockerTargetConfig, DockerHandle> {
  readonly name = "docker";
  readonly configSchema = dockerTargetConfigSchema;

  private settings: DockerTargetSettings = resolveSettings({});
  private docker = new Docker();
  private readonly launching = new Map<string, Promise<DockerHandle>>();
  private lastHousekeeping = 0;
  private housekeeping: Promise<void> | null = null;

  async init(config: DockerTargetConfig, ctx: PluginContext): Promise<void> {
    this.settings = resolveSettings(config ?? {});
    if (this.settings.engineSocketFor.length && config?.host && !config.socketPath) {
      throw blacktreeError("TARGET_CONFIG_INVALID", "engineSocketFor mounts the engine's Unix socket into workers: it needs socketPath, not host", undefined, { retryable: false });
    }
    // Without socketPath or host, dockerode follows DOCKER_HOST, then /var/run/docker.sock.
    this.docker = config?.socketPath ? new Docker({ socketPath: config.socketPath }) : config?.host ? new Docker(hostOptions(config.host)) : new Docker();
    try {
      await this.docker.ping();
      ctx.logger.info(`✅ docker engine answers (network '${this.settings.network}')`);
    } catch (err) {
      // Not fatal: launches fail as retryable until the engine answers.
      ctx.logger.warn(`⚠️ docker engine does not answer yet: ${(err as Error).message}`);
    }
  }

  async launch(req: LaunchRequest, ctx: PluginContext): Promise<DockerHandle> {
    if (!req.key) throw blacktreeError("LAUNCH_FAILED", "cannot launch: the launch key is empty", undefined, { retryable: false });
    const run = containerRun(req.workload, this.settings);
    if ("refused" in run) throw blacktreeError("LAUNCH_FAILED", `cannot launch ${req.key}: ${run.refused}`, undefined, { retryable: false });
    const pending = this.launching.get(req.key);
    if (pending) return pending;
    const launch = this.launchOnce(req, run, ctx);
    this.launching.set(req.key, launch);
    const forget = () => this.launching.delete(req.key); // afterwards the engine answers by name
    launch.then(forget, forget);
    return launch;
  }

  /** One listing per call, matched by key label; only finished containers are inspected for their exit code. */
  async inspect(handles: DockerHandle[], ctx: PluginContext): Promise<TargetStatus[]> {
    if (handles.length === 0) return [];
    const byKey = new Map<string, Summary>();
    for (const c of await this.listOurs(["created", "running", "restarting", "paused", "exited", "dead", "removing"])) byKey.set(c.Labels[keyLabel(this.settings.labelPrefix)], c);
    this.housekeepSoon(ctx);
    return Promise.all(handles.map((h) => this.statusOf(h.key, byKey.get(h.key))));
  }

  async stop(handle: DockerHandle, reason: string, ctx: PluginContext): Promise<void> {
    await this.launching.get(handle.key)?.catch(() => undefined);
    const info = await this.inspectByName(containerName(this.settings.labelPrefix, handle.key));
    if (!info || info.Config.Labels?.[keyLabel(this.settings.labelPrefix)] !== handle.key) return;
    const container = this.docker.getContainer(info.Id);
    if (info.State.Status === "created") {
      // Never started: removing it is the whole stop (inspect then says lost, not pending forever).
      await container.remove({ force: true }).catch((err) => ignore(err, [404, 409], "remove"));
      return;
    }
    if (!["running", "restarting", "paused"].includes(info.State.Status)) return;
    ctx.logger.info(`🔄 stopping container ${info.Name.replace(/^\//, "")} (${handle.key}): ${reason}`);
    // Docker sends SIGTERM, then SIGKILL after t seconds.
    await container.stop({ t: Math.ceil(this.settings.stopGraceMs / 1000) }).catch((err) => ignore(err, [304, 404], "stop"));
    ctx.logger.info(`✅ container for ${handle.key} stopped`);
  }

  async *logs(handle: DockerHandle): AsyncIterable<string> {
    let raw: Buffer;
    try {
      const container = this.docker.getContainer(containerName(this.settings.labelPrefix, handle.key));
      raw = (await container.logs({ stdout: true, stderr: true, follow: false, tail: LOG_TAIL_LINES })) as unknown as Buffer;
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw engineError("logs", err);
    }
    yield* tailLines(demux(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))), this.settings.logMaxBytes);
  }

  /** Keys of containers not yet finished (what orphan reaping may stop). */
  async list(ctx: PluginContext): Promise<string[]> {
    this.housekeepSoon(ctx);
    return (await this.listOurs(LIVE_STATES)).map((c) => c.Labels[keyLabel(this.settings.labelPrefix)]);
  }

  /** Leaves containers running: a restarted orchestrator adopts them by name and label. */
  async close(): Promise<void> {
    await this.housekeeping?.catch(() => undefined);
  }

  /** The registry's basic credentials, for the worker's one-time secrets fetch only. */
  async workerSecrets(): Promise<Record<string, string>> {
    return basicRegistrySecrets(this.settings.registry) ?? {};
  }

  private async launchOnce(req: LaunchRequest, run: ContainerRun, ctx: PluginContext): Promise<DockerHandle> {
    const image = run.image;
    const { labelPrefix: prefix, network } = this.settings;
    const name = containerName(prefix, req.key);
    const existing = await this.inspectByName(name).catch((err) => {
      throw launchError(req.key, err, image);
    });
    if (existing) return this.adopt(existing, req.key, image, ctx);
    let id: string;
    try {
      const container = await this.docker.createContainer({
        name,
        Image: image,
        Cmd: run.command,
        // Registry address and secret names only: credentials come through the secrets fetch.
        Env: Object.entries(namedWorker(req) ? registryEnv(this.settings.registry, req.workload.env ?? {}) : (req.workload.env ?? {})).map(([k, v]) => `${k}=${v}`),
        Labels: containerLabels(prefix, req.key, req.labels ?? {}),
        StopTimeout: Math.ceil(this.settings.stopGraceMs / 1000),
        HostConfig: {
          NetworkMode: network,
          ...(namedWorker(req) && this.settings.workerSecurityOpt.length ? { SecurityOpt: this.settings.workerSecurityOpt } : {}),
          ...(this.bindsOf(req).length ? { Binds: this.bindsOf(req) } : {}),
          ...(req.workload.cpu ? { NanoCpus: Math.round(req.workload.cpu * 1e9) } : {}),
          ...(req.workload.memoryMb ? { Memory: Math.round(req.workload.memoryMb * 1024 * 1024) } : {}),
        },
      });
      id = container.id;
    } catch (err) {
      if (statusOf(err) !== 409) throw launchError(req.key, err, image);
      // Another launcher (a concurrent call elsewhere, an orchestrator before a crash) created it.
      const raced = await this.inspectByName(name).catch((e) => {
        throw launchError(req.key, e, image);
      });
      if (!raced) throw blacktreeError("LAUNCH_FAILED", `cannot launch ${req.key}: container ${name} vanished while being adopted`, undefined, { retryable: true });
      return this.adopt(raced, req.key, image, ctx);
    }
    await this.start(id, req.key, image);
    ctx.logger.info(`🔄 launched container ${name} for ${req.key}`);
    return { key: req.key, name, id };
  }

  /** The worker image's read-only binds, and the engine socket for the job types `engineSocketFor` names. */
  private bindsOf(req: LaunchRequest): string[] {
    const binds = namedWorker(req) ? [...this.settings.workerBinds] : [];
    if (this.settings.engineSocketFor.includes(req.labels?.["blacktree.type"] ?? "")) binds.push(`${this.settings.engineSocketPath}:/var/run/docker.sock`);
    return binds;
  }

  /** An existing container of this key is the launch: started if it never was, never run twice. */
  private async adopt(info: Docker.ContainerInspectInfo, key: string, image: string, ctx: PluginContext): Promise<DockerHandle> {
    const name = info.Name.replace(/^\//, "");
    if (info.Config.Labels?.[keyLabel(this.settings.labelPrefix)] !== key) {
      throw blacktreeError("LAUNCH_FAILED", `cannot launch ${key}: container ${name} exists but belongs to another key`, undefined, { retryable: false });
    }
    if (info.State.Status === "created") await this.start(info.Id, key, image);
    ctx.logger.info(`✅ adopted container ${name} for ${key} (${info.State.Status})`);
    return { key, name, id: info.Id };
  }

  private async start(id: string, key: string, image: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if (statusOf(err) === 304) return; // already started
      // A container that cannot start (no such executable in the image) would stay "created" for ever.
      await this.docker.getContainer(id).remove({ force: true }).catch(() => undefined);
      throw launchError(key, err, image);
    }
  }

  private async statusOf(key: string, summary: Summary | undefined): Promise<TargetStatus> {
    if (!summary) return { key, state: "lost", reason: "no container for this key (never created, or removed after retention)" };
    switch (summary.State) {
      case "created":
        return { key, state: "pending" };
      case "running":
      case "restarting":
      case "paused":
        return { key, state: "running" };
      case "exited": {
        const info = await this.inspectByName(summary.Id).catch((err) => {
          throw engineError("inspect", err);
        });
        if (!info) return { key, state: "lost", reason: "container removed while being inspected" };
        return info.State.OOMKilled ? { key, state: "exited", exitCode: info.State.ExitCode, reason: "killed: out of memory" } : { key, state: "exited", exitCode: info.State.ExitCode };
      }
      default:
        return { key, state: "lost", reason: `container is ${summary.State}` };
    }
  }

  private async listOurs(states: string[]): Promise<Summary[]> {
    try {
      return await this.docker.listContainers({ all: true, filters: { label: [keyLabel(this.settings.labelPrefix)], status: states } });
    } catch (err) {
      throw engineError("list", err);
    }
  }

  private async inspectByName(nameOrId: string): Promise<Docker.ContainerInspectInfo | null> {
    try {
      return await this.docker.getContainer(nameOrId).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  /** Removes finished containers once `retentionMs` has passed since they ended; at most every 30 s, never awaited by callers. */
  private housekeepSoon(ctx: PluginContext): void {
    const every = Math.min(HOUSEKEEPING_EVERY_MS, this.settings.retentionMs);
    if (this.housekeeping || Date.now() - this.lastHousekeeping < every) return;
    this.lastHousekeeping = Date.now();
    this.housekeeping = this.removeExpired(ctx)
      .catch((err) => ctx.logger.warn(`⚠️ docker housekeeping failed: ${(err as Error).message}`))
      .finally(() => {
        this.housekeeping = null;
      });
  }

  private async removeExpired(ctx: PluginContext): Promise<void> {
    for (const summary of await this.listOurs(["exited", "dead"])) {
      const info = await this.inspectByName(summary.Id);
      const finishedAt = info ? Date.parse(info.State.FinishedAt) : NaN;
      if (!info || !(Date.now() - finishedAt >= this.settings.retentionMs)) continue;
      await this.docker.getContainer(info.Id).remove({ force: true }).catch((err) => ignore(err, [404, 409], "remove"));
      ctx.logger.debug(`removed finished container ${info.Name} (retention ${this.settings.retentionMs} ms)`);
    }
  }
}

/** A named worker from the worker image (not a plugin's own image): only it is told about the registry. */
function namedWorker(req: LaunchRequest): boolean {
  return Boolean(req.workload.worker) && !req.workload.image;
}

function hostOptions(host: string): Docker.DockerOptions {
  const url = new URL(host.replace(/^tcp:/, "http:"));
  return { protocol: url.protocol === "https:" ? "https" : "http", host: url.hostname, port: Number(url.port || 2375) };
}

/** Statuses that mean "already done" for an idempotent call; anything else is an engine failure. */
function ignore(err: unknown, statuses: number[], what: string): void {
  const status = statusOf(err);
  if (status !== undefined && statuses.includes(status)) return;
  throw engineError(what, err);
}

export function createDockerTarget(): DockerTarget {
  return new DockerTarget();
}
