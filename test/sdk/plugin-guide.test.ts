import { ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { authHeader, freePort, ROOT, tempDir, TEST_API_KEYS_ENV } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/**
 * docs/plugins.md, followed word for word from an empty directory: its files are written
 * out, its `bash step` blocks run (packing the SDK from this checkout and installing the
 * tarball, building, `npm test` with the testkit and the target conformance suite), every
 * other snippet is compiled, and the plugin is loaded into the orchestrator's real
 * `npm start` with PLUGINS_CONFIG, where a job of the new type succeeds. The guide's files
 * are examples/plugin-acme/, byte for byte, so this is that package's CI too.
 */
const GUIDE = path.join(ROOT, "docs/plugins.md");
const EXAMPLE = path.join(ROOT, "examples/plugin-acme");
const SDK_VERSION: string = JSON.parse(fs.readFileSync(path.join(ROOT, "packages/sdk/package.json"), "utf8")).version;
/** Not part of the package the guide builds. */
const EXAMPLE_ONLY = new Set(["README.md", ".gitignore"]);

interface Block {
  lang: string;
  info: string;
  code: string;
  line: number;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  const re = /^```(\w*)([^\n]*)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) {
    out.push({ lang: m[1], info: m[2].trim(), code: m[3], line: markdown.slice(0, m.index).split("\n").length });
  }
  return out;
}

const fileOf = (b: Block) => /(?:^|\s)file=(\S+)/.exec(b.info)?.[1] ?? null;

function filesUnder(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" || e.name === "dist" ? [] : filesUnder(p, base);
    return [path.relative(base, p)];
  });
}

/** A clean environment: nothing of this test run's npm (npm_* variables) leaks into the guide's commands. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH!, HOME: process.env.HOME!, LANG: "C.UTF-8", ...extra };
}

function run(what: string, cmd: string, args: string[], cwd: string, env: Record<string, string>, timeout = 180_000): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout });
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ""}):\n${output.slice(-6000)}`);
  return output;
}

const markdown = fs.readFileSync(GUIDE, "utf8");
const all = blocks(markdown);
let dir: string;
let orchestrator: ChildProcess | null = null;
const started = Date.now();

afterAll(async () => {
  if (orchestrator?.pid && orchestrator.exitCode === null && orchestrator.signalCode === null) {
    const exited = new Promise((resolve) => orchestrator!.once("exit", resolve));
    process.kill(-orchestrator.pid, "SIGTERM"); // npm, its shell and node: the whole group we started
    await exited;
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true }); // ~80 MB of node_modules
  process.stdout.write(`✅ plugin guide: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
});

describe("docs/plugins.md, followed from an empty directory", () => {
  test("its files are examples/plugin-acme, byte for byte, and each is shown once", () => {
    const shown = all.filter(fileOf).map((b) => fileOf(b)!);
    expect(new Set(shown).size).toBe(shown.length);
    const example = filesUnder(EXAMPLE).filter((f) => !EXAMPLE_ONLY.has(f)).sort();
    expect([...shown].sort()).toEqual(example);
    for (const b of all.filter(fileOf)) expect({ file: fileOf(b), code: b.code }).toEqual({ file: fileOf(b), code: fs.readFileSync(path.join(EXAMPLE, fileOf(b)!), "utf8") });
  });

  test("the task type and the target are each under 100 lines", () => {
    for (const file of ["src/task-type.ts", "src/target.ts"]) expect(fs.readFileSync(path.join(EXAMPLE, file), "utf8").split("\n").length - 1).toBeLessThan(100);
  });

  test("its steps install the packed SDK, build the plugin and pass its tests (the testkit and the conformance suite)", () => {
    dir = tempDir("blacktree-guide-");
    expect(fs.readdirSync(dir)).toEqual([]);
    for (const b of all.filter(fileOf)) {
      fs.mkdirSync(path.dirname(path.join(dir, fileOf(b)!)), { recursive: true });
      fs.writeFileSync(path.join(dir, fileOf(b)!), b.code);
    }
    const steps = all.filter((b) => b.lang === "bash" && b.info === "step");
    expect(steps.length).toBeGreaterThanOrEqual(2);
    // The guide's commands as written; npm may answer from its cache, and is quiet about audits.
    const env = cleanEnv({ BLACKTREE: ROOT, npm_config_prefer_offline: "true", npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" });
    const outputs = steps.map((b) => run(`the step at docs/plugins.md:${b.line}`, "bash", ["-euo", "pipefail", "-c", b.code], dir, env, 240_000));

    // The SDK came from the packed tarball: a real directory in the project, recorded as the file.
    const installed = path.join(dir, "node_modules/@blacktree/sdk");
    expect(fs.lstatSync(installed).isSymbolicLink()).toBe(false);
    expect(JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")).version).toBe(SDK_VERSION);
    const lock = JSON.parse(fs.readFileSync(path.join(dir, "package-lock.json"), "utf8"));
    expect(lock.packages["node_modules/@blacktree/sdk"].resolved).toBe(`file:blacktree-sdk-${SDK_VERSION}.tgz`);
    expect(fs.existsSync(path.join(installed, "src"))).toBe(false); // only what the package ships
    // The tests really ran, the conformance suite included.
    const tests = outputs.join("\n");
    expect(tests).toContain("acme target conformance");
    expect(tests).toMatch(/Tests:\s+\d+ passed, \d+ total/);
    expect(tests).not.toMatch(/\d+ failed/);
    expect(fs.existsSync(path.join(dir, "dist/index.js"))).toBe(true);
  }, 300_000);

  test("every other snippet compiles against the installed SDK (ts with tsc, sh with sh -n, json parses)", () => {
    const fragments = all.filter((b) => !fileOf(b) && b.info !== "step");
    const ts = fragments.filter((b) => b.lang === "ts");
    expect(ts.length).toBeGreaterThanOrEqual(3);
    const snippets = path.join(dir, "snippets");
    fs.mkdirSync(snippets);
    ts.forEach((b, i) => fs.writeFileSync(path.join(snippets, `line-${b.line}-${i}.ts`), b.code));
    fs.writeFileSync(path.join(snippets, "tsconfig.json"), JSON.stringify({ extends: "../tsconfig.json", compilerOptions: { noEmit: true }, include: ["*.ts"] }));
    run("compiling the guide's snippets", process.execPath, [path.join(dir, "node_modules/typescript/bin/tsc"), "-p", snippets], dir, cleanEnv());
    for (const b of fragments.filter((f) => f.lang === "sh" || f.lang === "bash")) run(`sh -n of docs/plugins.md:${b.line}`, "sh", ["-n", "-c", b.code], dir, cleanEnv());
    for (const b of all.filter((f) => f.lang === "json")) expect(() => JSON.parse(b.code)).not.toThrow();
  }, 120_000);

  test("the packed SDK loads without Moleculer or anything of the orchestrator, and its types resolve", () => {
    const probe = `
      const sdk = require("@blacktree/sdk"); const worker = require("@blacktree/sdk/worker"); const testkit = require("@blacktree/sdk/testkit");
      const loaded = Object.keys(require.cache);
      console.log(JSON.stringify({ api: sdk.PLUGIN_API_VERSION, fns: [typeof sdk.definePlugin, typeof worker.WorkerClient, typeof worker.runWorker, typeof testkit.runTaskType, typeof testkit.poll], loaded }));`;
    const out = JSON.parse(run("requiring the SDK", process.execPath, ["-e", probe], dir, cleanEnv()).trim());
    expect(out.api).toBe(`${SDK_VERSION.split(".").slice(0, 2).join(".")}.0`);
    expect(out.fns).toEqual(["function", "function", "function", "function", "function"]); // the testkit loads without Jest; only targetConformance needs it
    const realDir = fs.realpathSync(dir);
    for (const file of out.loaded as string[]) {
      expect(file.startsWith(path.join(realDir, "node_modules") + path.sep)).toBe(true);
      expect(file).not.toMatch(/[/\\]moleculer[/\\]/);
    }
    // The worker entry alone loads nothing but itself: a worker image needs only the package.
    const workerOnly = JSON.parse(run("requiring the worker client", process.execPath, ["-e", 'require("@blacktree/sdk/worker"); console.log(JSON.stringify(Object.keys(require.cache)))'], dir, cleanEnv()).trim()) as string[];
    expect(workerOnly.every((f) => f.includes(path.join("node_modules", "@blacktree", "sdk", "dist", "worker")))).toBe(true);
    // Types resolve through `exports` (node16) as well as `typesVersions` (node10, the guide's tsconfig).
    fs.writeFileSync(path.join(dir, "snippets/resolve.ts"), 'import type { LaunchTarget } from "@blacktree/sdk";\nimport type { WorkerResult } from "@blacktree/sdk/worker";\nimport type { ConformanceSetup } from "@blacktree/sdk/testkit";\nexport type T = [LaunchTarget, WorkerResult, ConformanceSetup];\n');
    run("node16 type resolution", process.execPath, [path.join(dir, "node_modules/typescript/bin/tsc"), "--noEmit", "--strict", "--skipLibCheck", "--module", "node16", "--moduleResolution", "node16", "--types", "node", path.join(dir, "snippets/resolve.ts")], dir, cleanEnv());
  }, 60_000);

  test("loaded into `npm start` with PLUGINS_CONFIG, a job of the new type succeeds, reported by its worker", async () => {
    expect(markdown).toContain('PLUGINS_CONFIG="$OLDPWD/plugins.config.json" npm start');
    const jobBody = JSON.parse(fs.readFileSync(path.join(dir, "job.json"), "utf8"));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    orchestrator = spawn("npm", ["start"], {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: cleanEnv({
        PLUGINS_CONFIG: path.join(dir, "plugins.config.json"),
        DATA_DIR: path.join(dir, "orchestrator-data"),
        PORT: String(port),
        HOST: "127.0.0.1",
        BLACKTREE_API_KEYS: TEST_API_KEYS_ENV,
        LOG_LEVEL: "warn",
        npm_config_update_notifier: "false",
      }),
    });
    let output = "";
    orchestrator.stdout!.on("data", (c) => (output += c));
    orchestrator.stderr!.on("data", (c) => (output += c));
    const exited = new Promise<number | null>((resolve) => orchestrator!.once("exit", resolve));
    await waitFor(
      async () => {
        if (orchestrator!.exitCode !== null) throw new Error(`npm start exited ${orchestrator!.exitCode}:\n${output}`);
        return (await fetch(`${url}/health`)).ok;
      },
      { timeout: 120_000, interval: 200, message: "npm start answered /health (it builds first)" },
    ).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${output.slice(-4000)}`);
    });

    const api = async (method: string, route: string, body?: unknown) => {
      const res = await fetch(url + route, { method, headers: { ...authHeader("admin"), "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as any };
    };
    const plugins = await api("GET", "/api/plugins");
    expect(plugins.body.plugins).toEqual([expect.objectContaining({ name: "acme", version: "1.0.0", apiVersion: "^1.1.0", source: "./dist" })]);
    expect(plugins.body.targets).toEqual([expect.objectContaining({ name: "acme", plugin: "acme" })]);

    const submitted = await api("POST", "/api/jobs", jobBody);
    expect(submitted.status).toBe(202);
    const id = submitted.body.job.id as string;
    const done = await waitFor(
      async () => {
        const r = await api("GET", `/api/jobs/${id}`);
        return ["succeeded", "failed", "timed_out", "cancelled"].includes(r.body.job.state) ? r.body : null;
      },
      { timeout: 30_000, message: `job ${id} ended` },
    );
    expect(done.job).toMatchObject({ state: "succeeded", type: "acme-report", target: "acme", result: { success: true, lines: 3, message: "wrote 3 lines" } });
    // The worker reported through the worker client: the secret fetched once, the result.
    expect(done.history).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "attempt.secrets_fetched", data: { names: ["webhookToken"], key: `${id}:1` } }), expect.objectContaining({ kind: "attempt.result", data: expect.objectContaining({ success: true }) })]));
    const logs = (await api("GET", `/api/jobs/${id}/logs`)).body.attempts[0].lines as string[];
    expect(logs).toEqual(expect.arrayContaining([`📄 Weekly: line 3 of 3 (job ${id}, attempt 1)`, "🔄 would notify the webhook with ***", "✅ wrote 3 lines"]));
    expect(JSON.stringify(done) + logs.join("\n")).not.toContain(jobBody.webhookToken);
    // notify: the follow-up job of the task type's followUps ran too.
    const followUp = await waitFor(
      async () => {
        const event = (await api("GET", `/api/jobs/${id}`)).body.history.find((e: any) => e.kind === "job.follow_up");
        const child = event && (await api("GET", `/api/jobs/${event.data.jobId}`));
        return child?.body.job.state === "succeeded" ? child.body : null;
      },
      { timeout: 30_000, message: "the follow-up succeeded" },
    );
    expect(followUp.job).toMatchObject({ parentId: id, params: { title: "Weekly: 3 lines", lines: 1 } });

    process.kill(-orchestrator.pid!, "SIGTERM");
    await exited;
  }, 180_000);

  test("pointed at the plugin's TypeScript sources, the compiled orchestrator refuses it by name and file", () => {
    // dist/ is what `npm start` just built.
    const config = path.join(dir, "plugins.ts.config.json");
    fs.writeFileSync(config, JSON.stringify({ plugins: [{ use: "./src" }], routing: { default: "acme" } }));
    const r = spawnSync(process.execPath, [path.join(ROOT, "dist/bin/blacktree.js")], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 30_000,
      env: cleanEnv({ PLUGINS_CONFIG: config, DATA_DIR: path.join(dir, "ts-data"), PORT: "0", BLACKTREE_API_KEYS: TEST_API_KEYS_ENV }),
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`PLUGIN_LOAD_FAILED: Plugin './src' (${path.join(dir, "src/index.ts")}) is TypeScript, which this orchestrator cannot load`);
  }, 60_000);
});
