import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { BrokerOptions, ServiceBroker } from "moleculer";
import { brokerConfig } from "../../moleculer.config";
import { loadPluginsConfig, PluginsConfig } from "../../lib/config/plugins-config";
import type { HostResolver } from "../../lib/plugins/repository-host";
import { createRuntime, Runtime } from "../../lib/runtime";
import { loadEnvConfig } from "../../lib/config/env";
import { loadSecretBox } from "../../lib/secrets/secret-box";
import { createStore } from "../../lib/store";
import type { JobStore } from "../../lib/store/job-store";
import { nodeServices } from "../../services";
import { removeBuiltImages } from "./docker";

export const ROOT = path.resolve(__dirname, "../..");

/** API keys of every test node, one per role (plus a second submitter). */
export const TEST_KEYS = {
  admin: "test-admin-key-0123456789",
  operator: "test-operator-key-0123456789",
  submitter: "test-submitter-key-0123456789",
  submitter2: "test-submitter2-key-0123456789",
} as const;
export const TEST_API_KEYS_ENV = `admin:admin:${TEST_KEYS.admin},operator:operator:${TEST_KEYS.operator},alice:submitter:${TEST_KEYS.submitter},bob:submitter:${TEST_KEYS.submitter2}`;

/** `Authorization` for a test key (admin by default): for tests that call fetch themselves. */
export function authHeader(role: keyof typeof TEST_KEYS = "admin"): Record<string, string> {
  return { authorization: `Bearer ${TEST_KEYS[role]}` };
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

/** Under the run's own temporary directory (test/support/global-setup.ts sets TMPDIR), removed when the run ends. */
export function tempDir(prefix = "blacktree-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface TestNode {
  rt: Runtime;
  broker: ServiceBroker;
  url: string;
  dataDir: string;
  /** Sends the admin key unless `headers` carry `authorization` or `x-api-key` (an empty one sends none). */
  http(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; text: string; headers: Headers }>;
  /** Stops the broker and closes the store; workers keep running (as after a crash of the node). Images its builds tagged are removed. */
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
  /** Wraps the node's store (the one it would open itself) before the runtime gets it, e.g. to count what the engine reads. */
  wrapStore?: (store: JobStore) => JobStore;
  /** The repository host check's DNS (default: the system resolver), e.g. one that fails on demand. */
  resolveHost?: HostResolver;
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
    BLACKTREE_API_KEYS: TEST_API_KEYS_ENV,
    // Tests poll fast (and the access matrix fails authentication on purpose); the rate-limit tests set their own.
    BLACKTREE_RATE_LIMIT: "100000000",
    BLACKTREE_AUTH_FAILURE_LIMIT: "100000000",
    ...opts.env,
  };
  const config = loadPluginsConfig(env.PLUGINS_CONFIG, env, "development");
  opts.configure?.(config);
  let store: JobStore | undefined;
  if (opts.wrapStore) {
    // The store createRuntime would open: same file, same secrets key.
    const envConfig = loadEnvConfig(env, ROOT);
    const secrets = loadSecretBox({ key: envConfig.secretsKey, previous: envConfig.secretsKeyPrevious, dataDir: envConfig.dataDir, mode: envConfig.mode });
    store = opts.wrapStore(createStore({ databaseUrl: envConfig.databaseUrl ?? undefined, dataDir: envConfig.dataDir, secrets }));
  }
  const rt = await createRuntime({ env, cwd: ROOT, config, store, resolveHost: opts.resolveHost });
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
      const given = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
      const auth = "authorization" in given || "x-api-key" in given ? {} : authHeader("admin");
      for (const k of Object.keys(given)) if (given[k] === "") delete given[k];
      const res = await fetch(url + route, {
        method,
        headers: { "content-type": "application/json", ...auth, ...given },
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
      removeBuiltImages(await builtImages(rt.store).catch(() => []));
      await rt.store.close();
    },
  };
}

/** What the node's jobs built: the image of every job whose result names one. */
async function builtImages(store: JobStore): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listJobs({ state: "succeeded", limit: 500, cursor });
    for (const job of page.items) if (typeof job.result?.imageUrl === "string") out.push(job.result.imageUrl);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return out;
}
