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
