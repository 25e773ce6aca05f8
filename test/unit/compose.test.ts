import fs from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { ENV_DOCS, SERVICE_NAMES } from "../../lib/config/env";
import { loadPluginsConfig } from "../../lib/config/plugins-config";
import { loadPlugins } from "../../lib/plugins/loader";

/**
 * docker-compose.yml cannot be started here (no registry pulls), so it is checked for what
 * would make a cluster fail at start or split: every orchestrator variable is one the
 * orchestrator reads (ENV_DOCS), SERVICES names real services, the worker's variables are
 * the worker's, the cluster-wide settings are shared, every URL names a service of the file,
 * the plugins config it mounts loads, and docs/deploying.md documents every variable.
 */
const ROOT = path.resolve(__dirname, "../..");
const compose = parse(fs.readFileSync(path.join(ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, { image?: string; build?: { context: string; dockerfile: string }; command?: string[]; environment?: Record<string, string>; depends_on?: Record<string, unknown>; volumes?: string[]; ports?: string[] }>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
const built = Object.entries(services).filter(([, s]) => s.build);
const orchestrators = built.filter(([, s]) => !s.command);
const workers = built.filter(([, s]) => s.command?.join(" ") === "node dist/bin/worker.js");

/** The variables the worker node reads, from its loader (lib/config/worker-env.ts). */
const WORKER_VARS = new Set([...fs.readFileSync(path.join(ROOT, "lib/config/worker-env.ts"), "utf8").matchAll(/env\.([A-Z][A-Z0-9_]+)|envInt\(env, "([A-Z][A-Z0-9_]+)"/g)].map((m) => m[1] ?? m[2]));

const env = (name: string) => services[name].environment ?? {};

describe("docker-compose.yml", () => {
  test("has the infrastructure, two orchestrator nodes from the Dockerfile and a pool worker node", () => {
    for (const name of ["rabbitmq", "nats", "postgres", "redis"]) expect(services[name]?.image).toBeTruthy();
    expect(services.nats.command).toContain("-js");
    expect(orchestrators.map(([name]) => name).sort()).toEqual(["back", "front"]);
    for (const [, s] of built) expect(s.build).toEqual({ context: ".", dockerfile: "Dockerfile" });
    expect(fs.existsSync(path.join(ROOT, "Dockerfile"))).toBe(true);
    expect(workers.map(([name]) => name)).toEqual(["worker"]);
  });

  test("every orchestrator variable is one the orchestrator reads, and SERVICES names real services", () => {
    for (const [name, s] of orchestrators) {
      const unknown = Object.keys(s.environment ?? {}).filter((k) => !(k in ENV_DOCS));
      expect({ name, unknown }).toEqual({ name, unknown: [] });
      const wanted = String(s.environment!.SERVICES).split(",").map((x) => x.trim());
      const bad = wanted.filter((service) => !(SERVICE_NAMES as readonly string[]).includes(service) && !/^targets\.[A-Za-z0-9][A-Za-z0-9_-]*$/.test(service));
      expect({ name, bad }).toEqual({ name, bad: [] });
    }
    // Together the nodes run every service once at least.
    const all = new Set(orchestrators.flatMap(([, s]) => String(s.environment!.SERVICES).split(",")));
    expect([...SERVICE_NAMES].filter((n) => !all.has(n))).toEqual([]);
  });

  test("the worker node's variables are the worker's", () => {
    expect(WORKER_VARS).toEqual(new Set(["TRANSPORTER", "NAMESPACE", "NODE_ID", "LOG_LEVEL", "DATA_DIR", "WORKER_CAPACITY", "WORKER_LABELS", "WORKER_STOP_GRACE_MS"]));
    for (const [name] of workers) expect({ name, unknown: Object.keys(env(name)).filter((k) => !WORKER_VARS.has(k)) }).toEqual({ name, unknown: [] });
  });

  test("production settings are set and the cluster-wide ones are shared by every node", () => {
    for (const [name] of orchestrators) {
      for (const key of ["BLACKTREE_MODE", "DATABASE_URL", "TRANSPORTER", "NAMESPACE", "AMQP_URL", "BLACKTREE_SECRETS_KEY", "BLACKTREE_CALLBACK_SECRET", "BLACKTREE_API_KEY_PEPPER", "BLACKTREE_API_KEYS", "BLACKTREE_PUBLIC_URL", "PLUGINS_CONFIG"]) {
        expect({ name, key, set: Boolean(env(name)[key]) }).toEqual({ name, key, set: true });
      }
      expect(env(name).BLACKTREE_MODE).toBe("production");
      expect(/^postgres(ql)?:\/\//.test(env(name).DATABASE_URL)).toBe(true);
    }
    const [first, ...rest] = orchestrators.map(([name]) => env(name));
    for (const other of rest) {
      for (const key of ["DATABASE_URL", "TRANSPORTER", "NAMESPACE", "BLACKTREE_SECRETS_KEY", "BLACKTREE_CALLBACK_SECRET", "BLACKTREE_API_KEY_PEPPER", "BLACKTREE_PUBLIC_URL"]) expect(other[key]).toBe(first[key]);
    }
    for (const [name] of workers) {
      expect(env(name).TRANSPORTER).toBe(first.TRANSPORTER);
      expect(env(name).NAMESPACE).toBe(first.NAMESPACE);
    }
    // A node that hosts a target needs the pool's workers to reach the gateway it names.
    const publicHost = new URL(first.BLACKTREE_PUBLIC_URL).host;
    const gateway = orchestrators.find(([, s]) => String(s.environment!.SERVICES).split(",").includes("gateway"))!;
    expect(publicHost).toBe(`${gateway[0]}:${env(gateway[0]).PORT ?? "3000"}`);
  });

  test("every URL names a service of the file and every dependency exists", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (!/^(postgres|nats|amqp|redis|https?):\/\//.test(String(value))) continue;
        // Compose interpolation (${…}) inside a URL is replaced before the URL is read.
        const host = new URL(String(value).replace(/\$\{[^}]*\}/g, "x")).hostname;
        expect({ name, key, host, known: host in services }).toEqual({ name, key, host, known: true });
      }
      for (const dep of Object.keys(s.depends_on ?? {})) expect(services[dep]).toBeDefined();
      for (const v of s.volumes ?? []) {
        const source = v.split(":")[0];
        if (source.startsWith(".")) expect(fs.existsSync(path.join(ROOT, source))).toBe(true);
        else expect(compose.volumes ?? {}).toHaveProperty(source);
      }
    }
  });

  test("the plugins config it mounts loads and routes to the pool target", () => {
    const mounted = services.back.volumes!.find((v) => v.endsWith(":/etc/blacktree/plugins.config.json:ro"))!.split(":")[0];
    const file = path.join(ROOT, mounted);
    const config = loadPluginsConfig(file, {}, "production");
    const registry = loadPlugins(config, { baseDir: path.dirname(file) });
    expect(config.routing.default).toBe("pool");
    expect(registry.target("pool")).toBeTruthy();
    // The pool's total capacity (workers × WORKER_CAPACITY) holds limits.byTarget.pool, so jobs wait in the queue.
    const capacity = workers.reduce((n, [name]) => n + Number(env(name).WORKER_CAPACITY), 0);
    expect(config.limits.byTarget?.pool).toBeLessThanOrEqual(capacity);
  });

  test("docs/deploying.md documents every variable of the orchestrator and of the worker", () => {
    const doc = fs.readFileSync(path.join(ROOT, "docs/deploying.md"), "utf8");
    const missing = [...Object.keys(ENV_DOCS), ...WORKER_VARS].filter((k) => !doc.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });
});
