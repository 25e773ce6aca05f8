import { createHash } from "node:crypto";
import net from "node:net";
import Docker from "dockerode";
import type { Deployer, DeployLog } from "./deployer";
import type { RegistryAuth } from "./registry-auth";
import { DeployFailure, messageOf } from "./failure";
import type { DeployRequest, DockerDeploySettings } from "./settings";

/** Labels of an application container: what `stop` and the next deploy find it by. */
export const DEPLOYMENT_LABEL = "blacktree.deployment";
export const ROLE_LABEL = "blacktree.role";
const APP_ROLE = "app";
/** Without a port there is nothing to probe: running this long without exiting counts as started. */
const NO_PORT_SETTLE_MS = 2_000;
const PROBE_TIMEOUT_MS = 1_000;
const STOP_GRACE_SECONDS = 10;
const FAILURE_LOG_LINES = 20;
/** The failure message goes into the job's error and results: kept short. */
const FAILURE_LOG_CHARS = 2_000;

/** One container per attempt: a relaunch of the same attempt finds its own container again. */
export function appContainerName(req: DeployRequest): string {
  const readable = req.deploymentId.toLowerCase().replace(/[^a-z0-9_.-]+/g, "-").slice(0, 40);
  const hash = createHash("sha256").update(`${req.jobId}:${req.attempt}`).digest("hex").slice(0, 10);
  return `blacktree-app-${readable}-${hash}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether something accepts a TCP connection at host:port. */
function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** The text of a non-TTY `docker logs` answer (8-byte frame headers before each chunk). */
function demuxed(buffer: Buffer): string {
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= buffer.length && buffer[at] <= 2 && buffer.readUInt16BE(at + 1) === 0) {
    const size = buffer.readUInt32BE(at + 4);
    parts.push(buffer.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return at === 0 ? buffer.toString("utf8") : Buffer.concat(parts).toString("utf8");
}

/**
 * The Docker deployer: each deploy runs the image as a new long-running container labelled
 * with its deployment, waits until it answers on its port, then removes the previous
 * containers of the deployment. When the port is exclusive (network `host`, or published
 * on the host) two versions cannot listen at once: the previous one is stopped first and
 * started again if the new one fails.
 */
export class DockerDeployer implements Deployer {
  private readonly docker: Docker;
  /** What a deploy under way has changed, for `abort`. */
  private underWay: { created: string | null; stopped: string[] } | null = null;
  /** Set by `abort`: a deploy still under way must not start anything after it. */
  private aborted = false;

  constructor(
    private readonly settings: DockerDeploySettings,
    private readonly log: DeployLog,
    /** Credentials for pulling from the target's registry (null: pull anonymously). */
    private readonly pullAuth: (image: string) => Promise<RegistryAuth | null> = async () => null,
  ) {
    this.docker = settings.socketPath ? new Docker({ socketPath: settings.socketPath }) : new Docker({ socketPath: "/var/run/docker.sock" });
  }

  async deploy(req: DeployRequest): Promise<string> {
    if (!req.imageUrl) throw new DeployFailure("the deploy names no image", false);
    await this.engineAnswers();
    await this.ensureImage(req.imageUrl);
    const name = appContainerName(req);
    const previous = (await this.appContainers(req.deploymentId)).filter((c) => !c.Names.includes(`/${name}`));
    const exclusive = req.port !== null && (this.settings.network === "host" || this.settings.publishPort);
    this.underWay = { created: null, stopped: [] };
    if (exclusive) {
      for (const c of previous.filter((p) => p.State === "running")) {
        this.log.progress(`stopping the previous container ${c.Names[0]?.slice(1) ?? c.Id} first: port ${req.port} is exclusive on network '${this.settings.network}'`);
        await this.docker.getContainer(c.Id).stop({ t: STOP_GRACE_SECONDS }).catch((err) => ignoreStatus(err, [304, 404]));
        this.underWay.stopped.push(c.Id);
      }
    }
    let id: string;
    try {
      id = await this.startContainer(req, name);
      this.underWay.created = id;
      await this.waitUntilReady(id, name, req);
    } catch (err) {
      await this.undo();
      throw err;
    }
    for (const c of previous) {
      await this.docker.getContainer(c.Id).remove({ force: true }).catch((err) => ignoreStatus(err, [404, 409]));
      this.log.progress(`removed the previous container ${c.Names[0]?.slice(1) ?? c.Id}`);
    }
    this.underWay = null;
    return `deployed ${req.imageUrl} as container ${name}${req.port !== null ? `, answering on port ${req.port}` : ""}`;
  }

  async stop(deploymentId: string): Promise<string> {
    await this.engineAnswers();
    const containers = await this.appContainers(deploymentId);
    for (const c of containers) {
      await this.docker.getContainer(c.Id).remove({ force: true }).catch((err) => ignoreStatus(err, [404, 409]));
      this.log.progress(`removed container ${c.Names[0]?.slice(1) ?? c.Id}`);
    }
    return containers.length ? `stopped deployment ${deploymentId}: removed ${containers.length} container(s)` : `deployment ${deploymentId} has no container: nothing to stop`;
  }

  async abort(): Promise<void> {
    this.aborted = true;
    if (this.underWay) await this.undo();
  }

  /** Removes the new container and starts again what the deploy stopped. */
  private async undo(): Promise<void> {
    const underWay = this.underWay;
    this.underWay = null;
    if (!underWay) return;
    if (underWay.created) {
      await this.docker.getContainer(underWay.created).remove({ force: true }).catch((err) => this.log.warn(`could not remove the new container: ${messageOf(err)}`));
      this.log.progress("removed the new container");
    }
    for (const id of underWay.stopped) {
      try {
        await this.docker.getContainer(id).start();
        this.log.progress(`started the previous container ${id.slice(0, 12)} again`);
      } catch (err) {
        if (statusOf(err) !== 304) this.log.warn(`could not start the previous container ${id.slice(0, 12)} again: ${messageOf(err)}`);
      }
    }
  }

  private async engineAnswers(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw new DeployFailure(`no Docker engine answered at ${this.settings.socketPath ?? "/var/run/docker.sock"}: ${messageOf(err)}`);
    }
  }

  private async ensureImage(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
      return;
    } catch (err) {
      if (statusOf(err) !== 404) throw new DeployFailure(`could not inspect image ${image}: ${messageOf(err)}`);
    }
    const authconfig = await this.pullAuth(image);
    this.log.progress(`pulling ${image}${authconfig ? " with the registry's credentials" : ""}`);
    try {
      await new Promise<void>((resolve, reject) =>
        this.docker.pull(image, authconfig ? { authconfig } : {}, (err: Error | null, stream?: NodeJS.ReadableStream) =>
          err || !stream ? reject(err ?? new Error("no pull stream")) : this.docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve())),
        ),
      );
    } catch (err) {
      if (err instanceof DeployFailure) throw err;
      throw new DeployFailure(`image ${image} is not on the engine and pulling it failed: ${messageOf(err)}`);
    }
  }

  private async appContainers(deploymentId: string): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({ all: true, filters: { label: [`${ROLE_LABEL}=${APP_ROLE}`, `${DEPLOYMENT_LABEL}=${deploymentId}`] } });
  }

  /** Creates and starts the attempt's container; one left by an earlier run of this attempt is reused if it runs, else replaced. */
  private async startContainer(req: DeployRequest, name: string): Promise<string> {
    const existing = await this.docker
      .getContainer(name)
      .inspect()
      .catch((err) => (statusOf(err) === 404 ? null : Promise.reject(err)));
    if (existing?.State.Running) return existing.Id;
    if (existing) await this.docker.getContainer(existing.Id).remove({ force: true });
    const portKey = `${req.port}/tcp`;
    const publish = req.port !== null && this.settings.publishPort && this.settings.network !== "host";
    this.log.progress(`starting ${req.imageUrl} as ${name} (network '${this.settings.network}'${req.port !== null ? `, port ${req.port}` : ""})`);
    try {
      const container = await this.docker.createContainer({
        name,
        Image: req.imageUrl,
        Env: req.port !== null ? [`PORT=${req.port}`] : [],
        Labels: { [DEPLOYMENT_LABEL]: req.deploymentId, [ROLE_LABEL]: APP_ROLE, "blacktree.job": req.jobId, "blacktree.attempt": String(req.attempt), "blacktree.image": req.imageUrl },
        ...(req.port !== null ? { ExposedPorts: { [portKey]: {} } } : {}),
        HostConfig: {
          NetworkMode: this.settings.network,
          RestartPolicy: { Name: "unless-stopped" },
          ...(publish ? { PortBindings: { [portKey]: [{ HostPort: String(req.port) }] } } : {}),
        },
      });
      if (this.underWay) this.underWay.created = container.id;
      if (this.aborted) {
        await container.remove({ force: true });
        throw new DeployFailure("the deploy was cut short before its container started");
      }
      await container.start();
      return container.id;
    } catch (err) {
      throw new DeployFailure(`could not start ${req.imageUrl}: ${messageOf(err)}`);
    }
  }

  /** Until the container answers on its port (or, without a port, has run a moment), it exits, or the deadline passes. */
  private async waitUntilReady(id: string, name: string, req: DeployRequest): Promise<void> {
    const deadline = Date.now() + this.settings.readyTimeoutMs;
    const container = this.docker.getContainer(id);
    this.log.progress(req.port !== null ? `waiting up to ${this.settings.readyTimeoutMs} ms for ${name} to answer on port ${req.port}` : `waiting for ${name} to keep running (no port to probe)`);
    for (;;) {
      const info = await container.inspect();
      if (!info.State.Running || info.State.Restarting || info.RestartCount > 0) {
        throw new DeployFailure(`container ${name} exited (code ${info.State.ExitCode}) before it answered${await this.lastLines(id)}`);
      }
      if (req.port === null) {
        if (Date.now() - Date.parse(info.State.StartedAt) >= NO_PORT_SETTLE_MS) return;
      } else if (await answers(this.probeHost(info, name), req.port)) {
        return;
      }
      if (Date.now() >= deadline) {
        throw new DeployFailure(`container ${name} did not answer on port ${req.port} within ${this.settings.readyTimeoutMs} ms${await this.lastLines(id)}`);
      }
      await sleep(this.settings.pollMs);
    }
  }

  /**
   * Where the application itself answers: the host's loopback on network `host`, else the
   * container's address on its network — never a published host port, where Docker's proxy
   * accepts connections before the application listens.
   */
  private probeHost(info: Docker.ContainerInspectInfo, name: string): string {
    if (this.settings.network === "host") return "127.0.0.1";
    const networks = Object.values(info.NetworkSettings.Networks ?? {});
    const address = networks.map((n) => n.IPAddress).find(Boolean);
    if (!address && this.settings.publishPort) return "127.0.0.1";
    if (!address) throw new DeployFailure(`container ${name} has no address on network '${this.settings.network}': nothing can reach its port (use a network with addresses, or 'host')`, false);
    return address;
  }

  private async lastLines(id: string): Promise<string> {
    try {
      const raw = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail: FAILURE_LOG_LINES, follow: false })) as unknown as Buffer;
      const text = demuxed(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))).trim().slice(-FAILURE_LOG_CHARS);
      return text ? `; its last output:\n${text}` : "";
    } catch {
      return "";
    }
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number })?.statusCode;
}

function ignoreStatus(err: unknown, statuses: number[]): void {
  if (!statuses.includes(statusOf(err) ?? 0)) throw err;
}
