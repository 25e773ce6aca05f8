import { parsePluginsConfig } from "../../lib/config/plugins-config";
import { interpolateEnv } from "../../lib/config/interpolate";

const base = { plugins: [{ use: "./x" }], routing: { default: "process" } };

describe("plugins.config.json", () => {
  test("fills defaults and picks the policy of the mode", () => {
    const dev = parsePluginsConfig(base, {}, "development");
    expect(dev.routing).toEqual({ default: "process", byType: {}, fallback: {}, allowJobTarget: true });
    expect(dev.policy.allowLocalRepositories).toBe(true);
    expect(parsePluginsConfig(base, {}, "production").policy.allowLocalRepositories).toBe(false);
  });

  test("a bad field is named", () => {
    expect(() => parsePluginsConfig({ ...base, limits: { global: 0 } }, {}, "development")).toThrow(expect.objectContaining({ type: "CONFIG_INVALID", data: expect.objectContaining({ fields: [expect.objectContaining({ field: "limits.global" })] }) }));
    expect(() => parsePluginsConfig({ ...base, routing: {} }, {}, "development")).toThrow(/routing.default/);
    expect(() => parsePluginsConfig({ ...base, surprise: 1 }, {}, "development")).toThrow(/surprise/);
  });

  test("${VAR} and ${VAR:-default} come from the environment; an unset variable names the field", () => {
    expect(interpolateEnv({ a: ["${CLUSTER}", "x-${MISSING:-dflt}"] }, { CLUSTER: "prod" })).toEqual({ a: ["prod", "x-dflt"] });
    expect(() => interpolateEnv({ plugins: [{ config: { cluster: "${ECS_CLUSTER}" } }] }, {})).toThrow(/plugins\[0\]\.config\.cluster: environment variable ECS_CLUSTER is not set/);
  });
});

describe("SERVICES", () => {
  const { loadEnvConfig } = require("../../lib/config/env") as typeof import("../../lib/config/env");
  test("a name that is no service is a start-up error naming it", () => {
    expect(() => loadEnvConfig({ SERVICES: "gateway,dispatcher,lifecycel" })).toThrow(/SERVICES names 'lifecycel', which is not a service/);
  });
  test("service names and targets.<name> pass", () => {
    expect(loadEnvConfig({ SERVICES: "gateway, targets.process" }).services).toEqual(["gateway", "targets.process"]);
  });
});
