import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parsePluginsConfig } from "../../lib/config/plugins-config";
import { loadPlugins } from "../../lib/plugins/loader";
import { definePlugin, defineTarget, defineTaskType } from "../../lib/sdk";

const taskType = defineTaskType({ name: "lint", params: { deploymentId: "string" }, toWorkload: () => ({ env: {} }) });
const target = defineTarget(() => ({
  name: "fake",
  configSchema: { region: { type: "string", default: "eu-west-1" } },
  launch: async (req) => ({ key: req.key }),
  inspect: async () => [],
  stop: async () => undefined,
}));

function load(modules: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const config = parsePluginsConfig({ plugins: Object.keys(modules).map((use) => ({ use, ...(extra[use] ? { config: extra[use] } : {}) })), routing: { default: "fake" } }, {}, "development");
  return loadPlugins(config, { baseDir: "/", modules });
}

const good = { default: definePlugin({ name: "good", apiVersion: "^1.0.0", taskTypes: [taskType], targets: [target] }) };

describe("plugin loader", () => {
  test("loads task types and targets and fills target config defaults", () => {
    const reg = load({ good });
    expect(reg.taskType("lint")?.plugin).toBe("good");
    expect(reg.target("fake")?.config).toEqual({ region: "eu-west-1" });
    expect(reg.describe().taskTypes[0]).toEqual(expect.objectContaining({ name: "lint", plugin: "good" }));
  });

  test("refuses an API version range that excludes ours, naming the plugin", () => {
    const old = { name: "old", apiVersion: "^0.3.0", targets: [target] };
    expect(() => load({ old })).toThrow(expect.objectContaining({ type: "PLUGIN_API_MISMATCH", data: expect.objectContaining({ plugin: "old" }) }));
  });

  test("refuses an invalid range and a manifest that is not one", () => {
    expect(() => load({ bad: { name: "bad", apiVersion: "banana", targets: [target] } })).toThrow(expect.objectContaining({ type: "PLUGIN_INVALID" }));
    expect(() => load({ empty: {} })).toThrow(expect.objectContaining({ type: "PLUGIN_INVALID", data: expect.objectContaining({ plugin: "empty" }) }));
  });

  test("refuses duplicate plugins, task types and targets", () => {
    const twin = { name: "twin", apiVersion: "^1.0.0", taskTypes: [taskType] };
    expect(() => load({ good, twin })).toThrow(expect.objectContaining({ type: "PLUGIN_DUPLICATE", message: expect.stringMatching(/'lint' is already provided by plugin 'good'/) }));
    const again = { ...good.default };
    expect(() => load({ good, again })).toThrow(expect.objectContaining({ type: "PLUGIN_DUPLICATE" }));
  });

  test("refuses a target config that fails the target's schema, naming the field", () => {
    expect(() => load({ good }, { good: { region: 42 } })).toThrow(expect.objectContaining({ type: "TARGET_CONFIG_INVALID", data: expect.objectContaining({ plugin: "good", fields: [expect.objectContaining({ field: "config.region" })] }) }));
    expect(() => load({ good }, { good: { regoin: "x" } })).toThrow(expect.objectContaining({ type: "TARGET_CONFIG_INVALID" }));
  });

  test("refuses a target without launch()", () => {
    const broken = { name: "broken", apiVersion: "^1.0.0", targets: [() => ({ name: "fake", configSchema: {}, inspect: async () => [], stop: async () => undefined })] };
    expect(() => load({ broken })).toThrow(expect.objectContaining({ type: "PLUGIN_INVALID", message: expect.stringMatching(/launch\(\)/) }));
  });

  test("routing must name loaded targets and task types", () => {
    const config = parsePluginsConfig({ plugins: [{ use: "good" }], routing: { default: "fake", byType: { lint: "nowhere" } } }, {}, "development");
    expect(() => loadPlugins(config, { baseDir: "/", modules: { good } })).toThrow(expect.objectContaining({ type: "CONFIG_INVALID", data: { fields: [expect.objectContaining({ field: "routing.byType.lint" })] } }));
  });

  test("an unknown module is PLUGIN_NOT_FOUND", () => {
    const config = parsePluginsConfig({ plugins: [{ use: "./no/such/plugin" }], routing: { default: "process" } }, {}, "development");
    expect(() => loadPlugins(config, { baseDir: __dirname })).toThrow(expect.objectContaining({ type: "PLUGIN_NOT_FOUND" }));
  });

  test("the shipped plugins.config.json loads the built-ins by relative path", () => {
    const { loadPluginsConfig } = require("../../lib/config/plugins-config");
    const root = path.resolve(__dirname, "../..");
    const reg = loadPlugins(loadPluginsConfig(path.join(root, "plugins.config.json"), {}, "development"), { baseDir: root });
    expect([...reg.taskTypes.keys()].sort()).toEqual(["build", "deploy", "stop", "test"]);
    expect([...reg.targets.keys()]).toEqual(["process"]);
  });
});

describe("plugin manifests: dependencies, per-target config, errors that name the plugin and its file", () => {
  const fakeTarget = (name: string, schema: Record<string, unknown> = {}) =>
    defineTarget(() => ({ name, configSchema: { $$strict: true, ...schema }, launch: async (req) => ({ key: req.key }), inspect: async () => [], stop: async () => undefined }));
  const twoTargets = definePlugin({
    name: "clouds",
    version: "2.3.0",
    apiVersion: "^1.0.0",
    targets: [fakeTarget("north", { region: { type: "string", default: "n-1" } }), fakeTarget("south", { zone: { type: "number", optional: true } })],
  });
  const entries = (list: Array<Record<string, unknown>>, routingDefault = "north") => parsePluginsConfig({ plugins: list, routing: { default: routingDefault } }, {}, "development");
  const loadEntries = (list: Array<Record<string, unknown>>, modules: Record<string, unknown>, routingDefault?: string) => loadPlugins(entries(list, routingDefault), { baseDir: "/", modules });

  test("each target of a plugin gets its own config under targets.<name>", () => {
    const reg = loadEntries([{ use: "clouds", targets: { north: { region: "n-2" }, south: { zone: 3 } } }], { clouds: twoTargets });
    expect(reg.target("north")?.config).toEqual({ region: "n-2" });
    expect(reg.target("south")?.config).toEqual({ zone: 3 });
    // A target left out gets its defaults.
    expect(loadEntries([{ use: "clouds", targets: { south: { zone: 1 } } }], { clouds: twoTargets }).target("north")?.config).toEqual({ region: "n-1" });
  });

  test("a target's config is checked against that target's schema only, naming the field", () => {
    expect(() => loadEntries([{ use: "clouds", targets: { north: { zone: 3 } } }], { clouds: twoTargets })).toThrow(
      expect.objectContaining({ type: "TARGET_CONFIG_INVALID", message: expect.stringContaining("target 'north' config is invalid"), data: expect.objectContaining({ plugin: "clouds" }) }),
    );
  });

  test("`config` configures every target `targets` leaves out (each checked against its own schema)", () => {
    const shared = definePlugin({ ...twoTargets, targets: [fakeTarget("east", { region: { type: "string", default: "e-1" } }), fakeTarget("west", { region: { type: "string", default: "w-1" } })] });
    const reg = loadEntries([{ use: "shared", config: { region: "r-9" }, targets: { west: {} } }], { shared }, "east");
    expect(reg.target("east")?.config).toEqual({ region: "r-9" });
    expect(reg.target("west")?.config).toEqual({ region: "w-1" });
    // One config for two different schemas: refused by the one it does not fit, naming that target.
    expect(() => loadEntries([{ use: "clouds", config: { region: "x" } }], { clouds: twoTargets })).toThrow(expect.objectContaining({ type: "TARGET_CONFIG_INVALID", message: expect.stringContaining("target 'south' config is invalid") }));
  });

  test("a `targets` key naming no target of the plugin, and `config` for a plugin without targets, are refused", () => {
    expect(() => loadEntries([{ use: "clouds", targets: { west: {} } }], { clouds: twoTargets })).toThrow(
      expect.objectContaining({ type: "TARGET_CONFIG_INVALID", message: expect.stringMatching(/has no target 'west' \(its targets: north, south\)/), data: expect.objectContaining({ fields: [expect.objectContaining({ field: "plugins[0].targets.west" })] }) }),
    );
    const tasksOnly = definePlugin({ name: "tasks", apiVersion: "^1.0.0", taskTypes: [taskType] });
    expect(() => loadEntries([{ use: "clouds" }, { use: "tasks", config: { x: 1 } }], { clouds: twoTargets, tasks: tasksOnly })).toThrow(
      expect.objectContaining({ type: "TARGET_CONFIG_INVALID", message: expect.stringMatching(/'tasks' has no target to take `config`/), data: expect.objectContaining({ fields: [expect.objectContaining({ field: "plugins[1].config" })] }) }),
    );
  });

  test("dependencies: loaded in any order when satisfied; a missing one or one out of range is refused, naming both", () => {
    const drizzle = defineTaskType({ name: "drizzle", params: {}, toWorkload: () => ({ env: {} }) });
    const needsClouds = (range: string) => definePlugin({ name: "rain", apiVersion: "^1.1.0", dependencies: { clouds: range }, taskTypes: [drizzle] });
    const ok = loadEntries([{ use: "rain" }, { use: "clouds" }], { rain: needsClouds("^2.0.0"), clouds: twoTargets });
    expect(ok.describe().plugins.find((p) => p.name === "rain")).toEqual({ name: "rain", version: null, apiVersion: "^1.1.0", dependencies: { clouds: "^2.0.0" }, source: "rain" });
    expect(() => loadEntries([{ use: "rain" }, { use: "clouds" }], { rain: needsClouds("^3.0.0"), clouds: twoTargets })).toThrow(
      expect.objectContaining({ type: "PLUGIN_DEPENDENCY_UNMET", message: "Plugin 'rain' needs plugin 'clouds' ^3.0.0, but the loaded 'clouds' is version 2.3.0" }),
    );
    expect(() => loadEntries([{ use: "rain" }, { use: "good" }], { rain: needsClouds("*"), good }, "fake")).toThrow(
      expect.objectContaining({ type: "PLUGIN_DEPENDENCY_UNMET", message: expect.stringMatching(/^Plugin 'rain' needs plugin 'clouds' \(\*\), which is not loaded/), data: expect.objectContaining({ plugin: "rain", fields: [expect.objectContaining({ field: "dependencies.clouds" })] }) }),
    );
    expect(() => loadEntries([{ use: "rain" }, { use: "clouds" }], { rain: needsClouds("not a range"), clouds: twoTargets })).toThrow(expect.objectContaining({ type: "PLUGIN_INVALID", message: expect.stringMatching(/invalid range 'not a range' for its dependency 'clouds'/) }));
    const unversioned = definePlugin({ ...twoTargets, version: undefined });
    expect(() => loadEntries([{ use: "rain" }, { use: "clouds" }], { rain: needsClouds("^2.0.0"), clouds: unversioned })).toThrow(expect.objectContaining({ type: "PLUGIN_DEPENDENCY_UNMET", message: expect.stringMatching(/the loaded 'clouds' declares no version/) }));
  });

  test("an invalid plugin version is refused", () => {
    expect(() => loadEntries([{ use: "clouds" }], { clouds: { ...twoTargets, version: "two" } })).toThrow(expect.objectContaining({ type: "PLUGIN_INVALID", message: expect.stringMatching(/invalid version 'two'/) }));
  });

  test("errors of plugins loaded from files name the plugin and the file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-loader-"));
    fs.writeFileSync(path.join(dir, "throws.js"), 'throw new Error("no credentials for acme");\n');
    fs.writeFileSync(path.join(dir, "old.js"), 'module.exports = { name: "old", apiVersion: "^0.9.0", taskTypes: [] };\n');
    fs.writeFileSync(path.join(dir, "shape.js"), "module.exports = 42;\n");
    const loadFile = (use: string) => loadPlugins(parsePluginsConfig({ plugins: [{ use }], routing: { default: "process" } }, {}, "development"), { baseDir: dir });
    expect(() => loadFile("./throws.js")).toThrow(
      expect.objectContaining({ type: "PLUGIN_LOAD_FAILED", message: `Plugin './throws.js' (${path.join(dir, "throws.js")}) failed to load: no credentials for acme`, data: { plugin: "./throws.js", file: path.join(dir, "throws.js") } }),
    );
    expect(() => loadFile("./old.js")).toThrow(expect.objectContaining({ type: "PLUGIN_API_MISMATCH", message: expect.stringContaining(`Plugin 'old' (${path.join(dir, "old.js")}) was written for plugin API ^0.9.0`) }));
    expect(() => loadFile("./shape.js")).toThrow(expect.objectContaining({ type: "PLUGIN_INVALID", message: expect.stringContaining(`Plugin './shape.js' (${path.join(dir, "shape.js")}) is not a valid plugin manifest`) }));
    expect(() => loadFile("./missing")).toThrow(expect.objectContaining({ type: "PLUGIN_NOT_FOUND", message: expect.stringContaining(`no module at ${path.join(dir, "missing")} (relative to the config file`) }));
  });
});
