import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as sdk from "@blacktree/sdk";
import { runTaskType } from "@blacktree/sdk/testkit";
import { parsePluginsConfig, loadPluginsConfig } from "../../lib/config/plugins-config";
import { ErrorCodes } from "../../lib/errors";
import { normalizeJob } from "../../lib/jobs/normalize";
import type { RetryPolicy as CoreRetryPolicy, Timeouts as CoreTimeouts } from "../../lib/jobs/policy";
import type { JobResult as CoreJobResult } from "../../lib/jobs/model";
import { loadPlugins } from "../../lib/plugins/loader";
import * as internal from "../../lib/plugins/sdk";
import { ROOT } from "../support/orchestrator";

/** The SDK package as the orchestrator uses it: one API version, one set of error codes, one way to apply a task type. */
const SDK_PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, "packages/sdk/package.json"), "utf8"));
const silent = { info() {}, warn() {}, error() {}, debug() {} };

// Compile-time: the SDK's copies of the job policy types are the engine's, both ways.
const timeouts: CoreTimeouts = {} as sdk.Timeouts;
const timeoutsBack: sdk.Timeouts = {} as CoreTimeouts;
const retry: CoreRetryPolicy = {} as sdk.RetryPolicy;
const retryBack: sdk.RetryPolicy = {} as CoreRetryPolicy;
const result: CoreJobResult = {} as sdk.JobResult;
void [timeouts, timeoutsBack, retry, retryBack, result];

describe("the SDK package and the orchestrator", () => {
  test("PLUGIN_API_VERSION is the package's major.minor.0, and what the loader checks (lib/plugins/sdk re-exports it)", () => {
    const [major, minor] = SDK_PACKAGE.version.split(".").map(Number);
    expect(sdk.PLUGIN_API_VERSION).toBe(`${major}.${minor}.0`);
    expect(internal.PLUGIN_API_VERSION).toBe(sdk.PLUGIN_API_VERSION);
    const plugin = (apiVersion: string) => ({ name: "probe", apiVersion, taskTypes: [{ name: "probe", params: {}, toWorkload: () => ({ env: {} }) }] });
    const load = (apiVersion: string) =>
      loadPlugins(parsePluginsConfig({ plugins: [{ use: "probe" }, { use: "process" }], routing: { default: "process" } }, {}, "development"), {
        baseDir: ROOT,
        modules: { probe: plugin(apiVersion), process: require("../../plugins/targets/process") },
      });
    expect(load(`^${major}.${minor}.0`).taskType("probe")).toBeDefined();
    expect(() => load(`^${major}.${minor + 1}.0`)).toThrow(expect.objectContaining({ type: "PLUGIN_API_MISMATCH", message: expect.stringContaining(`this orchestrator implements ${sdk.PLUGIN_API_VERSION}`) }));
    expect(() => load(`^${major + 1}.0.0`)).toThrow(expect.objectContaining({ type: "PLUGIN_API_MISMATCH" }));
  });

  test("the error types a plugin may throw have the orchestrator's status and retry flag", () => {
    for (const [type, code] of Object.entries(sdk.PLUGIN_ERROR_CODES)) expect({ type, ...code }).toEqual({ type, ...ErrorCodes[type as keyof typeof ErrorCodes] });
    const err = sdk.blacktreeError("LAUNCH_FAILED", "no capacity", { zone: "a" }, { retryable: false });
    expect(err).toMatchObject({ type: "LAUNCH_FAILED", code: 502, retryable: false, data: { zone: "a" }, message: "no capacity" });
    expect(sdk.isRetryable(sdk.blacktreeError("DEPENDENCY_UNAVAILABLE", "dns"))).toBe(true);
    expect(() => sdk.fieldError("title", "is bad", 3)).toThrow(expect.objectContaining({ type: "VALIDATION_FAILED", code: 422, data: { fields: [{ field: "title", message: "is bad", actual: 3 }] } }));
  });

  describe("runTaskType applies a task type as the orchestrator does", () => {
    const config = loadPluginsConfig(path.join(ROOT, "plugins.config.json"), {}, "development");
    const registry = loadPlugins(config, { baseDir: ROOT });
    const ctx = { logger: silent, dataDir: os.tmpdir(), mode: "development" as const, policy: config.policy };
    const bodies = [
      { type: "build", deploymentId: "abc", repository: "user/repo", portNumber: "3000", autoDeploy: "true", token: "ghp_secret0123456789", retry: { maxAttempts: 2 } },
      { type: "test", deploymentId: "abc", repository: "/tmp/blacktree-examples/hello", testCommand: "npm test", branch: "dev" },
      { type: "stop", deploymentId: "abc" },
    ];

    test.each(bodies)("same params, secrets, deploymentId and concurrency key for a $type job", async (body) => {
      const job = await normalizeJob({ body, source: "rest" }, { registry, config, ctx });
      const run = await runTaskType(registry.taskType(body.type)!.def, body, { ctx, id: job.id });
      expect(run.job.params).toEqual(job.params);
      expect(run.secrets).toEqual(job.secrets);
      expect(run.job.deploymentId).toBe(job.deploymentId);
      expect(run.concurrencyKey).toBe(job.concurrencyKey);
    });

    test("the same fields refused, with the same messages", async () => {
      const body = { type: "build", deploymentId: "bad id!", repository: "ext::sh -c x", portNumber: 70000 };
      const refusal = (p: Promise<unknown>) => p.then(() => null, (e: { type: string; data: { fields: Array<{ field: string; message: string }> } }) => ({ type: e.type, fields: e.data.fields.map((f) => [f.field, f.message]) }));
      const core = await refusal(normalizeJob({ body, source: "rest" }, { registry, config, ctx }));
      expect(core).not.toBeNull();
      expect(await refusal(runTaskType(registry.taskType("build")!.def, body, { ctx }))).toEqual(core);
    });
  });

  test("deploymentId is kept for a task type that does not declare it, and checked", async () => {
    const config = parsePluginsConfig({ plugins: [{ use: "plain" }, { use: "process" }], routing: { default: "process" } }, {}, "development");
    const plain = sdk.definePlugin({ name: "plain", apiVersion: "^1.0.0", taskTypes: [sdk.defineTaskType({ name: "plain", params: { n: { type: "number", optional: true } }, toWorkload: () => ({ env: {} }) })] });
    const registry = loadPlugins(config, { baseDir: ROOT, modules: { plain, process: require("../../plugins/targets/process") } });
    const ctx = { logger: silent, dataDir: os.tmpdir(), mode: "development" as const, policy: {} };
    const job = await normalizeJob({ body: { type: "plain", deploymentId: "shop-1" }, source: "rest" }, { registry, config, ctx });
    expect(job.deploymentId).toBe("shop-1");
    expect(job.params).toEqual({ deploymentId: "shop-1" });
    await expect(normalizeJob({ body: { type: "plain", deploymentId: "no spaces" }, source: "rest" }, { registry, config, ctx })).rejects.toMatchObject({ type: "VALIDATION_FAILED", data: { fields: [expect.objectContaining({ field: "deploymentId" })] } });
    expect((await normalizeJob({ body: { type: "plain" }, source: "rest" }, { registry, config, ctx })).deploymentId).toBeNull();
  });

  test("nodeWorkerCommand runs compiled JavaScript when it is there, else the TypeScript source through tsx", () => {
    const dir = fs.mkdtempSync(path.join(ROOT, ".tmp-node-command-"));
    try {
      fs.writeFileSync(path.join(dir, "w.ts"), 'const n: number = 41;\nconsole.log(`ts ${n + 1}`);\n');
      const ts = sdk.nodeWorkerCommand(path.join(dir, "w"));
      expect(ts).toEqual([process.execPath, "--import", expect.stringMatching(/^file:.*tsx/), path.join(dir, "w.ts")]);
      expect(spawnSync(ts[0], ts.slice(1), { cwd: os.tmpdir(), encoding: "utf8" }).stdout).toBe("ts 42\n");
      fs.writeFileSync(path.join(dir, "w.js"), 'console.log("js");\n');
      expect(sdk.nodeWorkerCommand(path.join(dir, "w.ts"))).toEqual([process.execPath, path.join(dir, "w.js")]);
      expect(() => sdk.nodeWorkerCommand(path.join(dir, "missing"))).toThrow(/no worker module at .*missing\.js or .*missing\.ts/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
