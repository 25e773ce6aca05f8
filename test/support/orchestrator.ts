import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { BrokerOptions, ServiceBroker } from "moleculer";
import { brokerConfig } from "../../moleculer.config";
import { loadPluginsConfig, PluginsConfig } from "../../lib/config/plugins-config";
import { createRuntime, Runtime } from "../../lib/runtime";
import { nodeServices } from "../../services";

export const ROOT = path.resolve(__dirname, "../..");

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

export function tempDir(prefix = "blacktree-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface TestNode {
  rt: Runtime;
  broker: ServiceBroker;
  url: string;
  dataDir: string;
  http(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; text: string; headers: Headers }>;
  /** Stops the broker and closes the store; workers keep running (as after a crash of the node). */
  stop(): Promise<void>;
}

export interface NodeOptions {
  dataDir?: string;
  port?: number;
  env?: Record<string, string>;
  /** Changes to the shipped plugins.config.json. */
  configure?: (config: PluginsConfig) => void;
  /** Broker options over the node's own (e.g. a logger that captures lines). */
  broker?: Partial<BrokerOptions>;
}

/** A whole orchestrator node in this process: real broker, gateway on a free port, SQLite in a temp dir. */
export async function startNode(opts: NodeOptions = {}): Promise<TestNode> {
  const dataDir = opts.dataDir ?? tempDir();
  const port = opts.port ?? (await freePort());
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATA_DIR: dataDir,
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "fatal",
    RECONCILE_INTERVAL_MS: "100",
    DISPATCH_INTERVAL_MS: "100",
    PLUGINS_CONFIG: path.join(ROOT, "plugins.config.json"),
    ...opts.env,
  };
  const config = loadPluginsConfig(env.PLUGINS_CONFIG, env, "development");
  opts.configure?.(config);
  const rt = await createRuntime({ env, cwd: ROOT, config });
  const broker = new ServiceBroker({ ...brokerConfig(rt.env), nodeID: `test-${port}`, ...opts.broker });
  for (const schema of nodeServices(rt)) broker.createService(schema);
  try {
    await broker.start();
  } catch (err) {
    // Whatever did start (gateway, clocks, connections) must not outlive the failed start.
    await broker.stop().catch(() => undefined);
    await rt.store.close();
    throw err;
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    rt,
    broker,
    url,
    dataDir,
    async http(method, route, body, headers = {}) {
      const res = await fetch(url + route, {
        method,
        headers: { "content-type": "application/json", ...headers },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
      return { status: res.status, body: parsed, text, headers: res.headers };
    },
    async stop() {
      await broker.stop();
      await rt.store.close();
    },
  };
}
