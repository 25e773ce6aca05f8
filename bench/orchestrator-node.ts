/**
 * The orchestrator under test: `node dist/bin/blacktree.js` as a child process with its own
 * data dir, port, API key, plugins config and AMQP vhost. The bench talks to it only from
 * outside (RabbitMQ, REST, /metrics, /proc).
 */
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { log, processCpuMs, until, withTimeout } from "./stats";

export const ROOT = path.resolve(__dirname, "..");
const ENTRY = path.join(ROOT, "dist/bin/blacktree.js");
export const NOOP_PLUGIN = path.join(ROOT, "bench/plugins/noop/index.js");
/** BullMQ runs its no-op processor at concurrency 50: the orchestrator gets the same global limit. */
export const CONCURRENCY = 50;

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** Child processes the bench started are killed when it exits, however it exits. */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** Builds dist/ when it is missing or older than any source file it is compiled from. */
export function ensureBuilt(): void {
  const built = fs.existsSync(ENTRY) ? fs.statSync(ENTRY).mtimeMs : 0;
  const newest = (dir: string): number => {
    let t = 0;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) t = Math.max(t, newest(p));
      else if (e.name.endsWith(".ts")) t = Math.max(t, fs.statSync(p).mtimeMs);
    }
    return t;
  };
  const sources = Math.max(...["bin", "lib", "services", "mixins", "plugins", "packages/sdk/src"].map((d) => newest(path.join(ROOT, d))), fs.statSync(path.join(ROOT, "moleculer.config.ts")).mtimeMs);
  if (built >= sources) return;
  log("🔄", "dist/ is missing or stale: npm run build");
  execFileSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
}

/** The shipped plugins plus the bench's no-op plugin; `bench-noop` jobs go to the no-op target, at most 50 at once. */
export function benchConfig(configure?: (c: any) => void): any {
  const shipped = JSON.parse(fs.readFileSync(path.join(ROOT, "plugins.config.json"), "utf8"));
  const config = {
    ...shipped,
    plugins: [...shipped.plugins, { use: NOOP_PLUGIN, config: {} }],
    routing: { ...shipped.routing, byType: { ...shipped.routing.byType, "bench-noop": "bench-noop", "bench-held": "bench-forever" } },
    limits: { global: CONCURRENCY, byType: { "bench-held": 1 } },
  };
  configure?.(config);
  return config;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface NodeOptions {
  amqpUrl: string;
  config: unknown;
  /** A data dir prepared beforehand (e.g. seeded); a fresh one otherwise. */
  dataDir?: string;
  env?: Record<string, string>;
  /** Runs the node with --cpu-prof into this directory. */
  cpuProfDir?: string;
  /** More node options (e.g. `--require` of a bench preload). */
  nodeArgs?: string[];
  /** When the node counts as started: `GET /health` answers 200 (the default), or this check (a node without the gateway). */
  ready?: (node: OrchestratorNode) => Promise<boolean>;
}

export class OrchestratorNode {
  private readonly tail: string[] = [];

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly key: string,
    readonly dir: string,
    readonly dataDir: string,
  ) {
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) this.tail.push(line);
      if (this.tail.length > 40) this.tail.splice(0, this.tail.length - 40);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(opts: NodeOptions): Promise<OrchestratorNode> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-bench-node-"));
    const dataDir = opts.dataDir ?? path.join(dir, "data");
    const configFile = path.join(dir, "plugins.config.json");
    fs.writeFileSync(configFile, JSON.stringify(opts.config, null, 2));
    const port = await freePort();
    const key = randomBytes(24).toString("base64url");
    const args = [...(opts.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`] : []), ...(opts.nodeArgs ?? []), ENTRY];
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH!,
        HOME: process.env.HOME!,
        DATA_DIR: dataDir,
        PORT: String(port),
        HOST: "127.0.0.1",
        BLACKTREE_API_KEYS: `bench:admin:${key}`,
        // The bench polls /metrics; the default 600 requests a minute would throttle it.
        BLACKTREE_RATE_LIMIT: "100000000",
        AMQP_URL: opts.amqpUrl,
        LOG_LEVEL: "warn",
        PLUGINS_CONFIG: configFile,
        ...opts.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    track(child);
    const node = new OrchestratorNode(child, `http://127.0.0.1:${port}`, key, dir, dataDir);
    try {
      await until(
        async () => {
          if (child.exitCode !== null) throw new Error(`the orchestrator exited with ${child.exitCode} while starting:\n${node.tail.join("\n")}`);
          if (opts.ready) return opts.ready(node);
          return fetch(`${node.url}/health`).then((r) => r.ok, () => false);
        },
        { timeoutMs: 60_000, intervalMs: 100, message: "the orchestrator never became healthy" },
      );
    } catch (err) {
      await node.stop();
      throw err;
    }
    return node;
  }

  async get(route: string): Promise<string> {
    const res = await fetch(this.url + route, { headers: { authorization: `Bearer ${this.key}` } });
    const text = await res.text();
    if (!res.ok) throw new Error(`GET ${route} answered ${res.status}: ${text.slice(0, 200)}`);
    return text;
  }

  metrics(): Promise<string> {
    return this.get("/metrics");
  }

  /** VmRSS of the node process, MB (1024² bytes). */
  rssMb(): number {
    const status = fs.readFileSync(`/proc/${this.pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
    return kb / 1024;
  }

  /** utime + stime of the node process so far, ms. */
  cpuMs(): number {
    return processCpuMs(this.pid);
  }

  lastLines(): string {
    return this.tail.join("\n");
  }

  /**
   * SIGTERM (the node drains and exits; a --cpu-prof profile is written), SIGKILL after 15 s,
   * or SIGKILL at once with `kill` (a node whose leftovers do not matter); removes its temp dir.
   */
  async stop(opts: { kill?: boolean } = {}): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(opts.kill ? "SIGKILL" : "SIGTERM");
      const done = await withTimeout(exited.then(() => true), 15_000, () => false);
      if (!done) {
        log("⚠️", `orchestrator ${this.pid} did not stop in 15 s: SIGKILL`);
        child.kill("SIGKILL");
        await exited;
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
