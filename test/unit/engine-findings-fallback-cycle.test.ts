/**
 * Finding 5 — a routing.fallback list that leads back to its origin (or names a target
 * twice) is accepted, and a launch can then bounce between targets.
 *
 * FAILS ON MAIN: neither parsePluginsConfig (the schema only wants an array of strings)
 * nor loadPlugins (checkRouting only checks that each named target is loaded) refuses
 * `routing.fallback = { a: ["b", "a"] }`, `{ a: ["a"] }` or `{ a: ["b", "b"] }`: the config
 * loads, so the refusal expected (CONFIG_INVALID naming routing.fallback.a) is
 * "Received: null" (nothing was thrown).
 *
 * The test loads the way a node does — parse the file's JSON, then load the plugins —
 * and accepts the refusal from either step.
 */
import { parsePluginsConfig } from "../../lib/config/plugins-config";
import { loadPlugins } from "../../lib/plugins/loader";
import { definePlugin, defineTarget } from "../../lib/sdk";

const targetNamed = (name: string) =>
  defineTarget(() => ({
    name,
    configSchema: {},
    launch: async (req) => ({ key: req.key }),
    inspect: async () => [],
    stop: async () => undefined,
  }));

const modules = {
  targets: { default: definePlugin({ name: "test-targets", apiVersion: "^1.0.0", targets: [targetNamed("a"), targetNamed("b"), targetNamed("c")] }) },
};

function loadWithFallback(fallback: Record<string, string[]>) {
  const config = parsePluginsConfig({ plugins: [{ use: "targets" }], routing: { default: "a", fallback } }, {}, "development");
  return loadPlugins(config, { baseDir: "/", modules });
}

function refusal(fallback: Record<string, string[]>): unknown {
  try {
    loadWithFallback(fallback);
  } catch (err) {
    return err;
  }
  return null;
}

const namesFallbackA = expect.objectContaining({
  type: "CONFIG_INVALID",
  data: expect.objectContaining({ fields: expect.arrayContaining([expect.objectContaining({ field: "routing.fallback.a" })]) }),
});

test("a fallback list that is fine loads (the control case)", () => {
  expect(() => loadWithFallback({ a: ["b", "c"] })).not.toThrow();
});

test("a fallback list leading back to its own origin is refused, naming routing.fallback.a", () => {
  expect(refusal({ a: ["b", "a"] })).toEqual(namesFallbackA);
});

test("a fallback list naming its origin first is refused too", () => {
  expect(refusal({ a: ["a"] })).toEqual(namesFallbackA);
});

test("a fallback list naming a target twice is refused, naming routing.fallback.a", () => {
  expect(refusal({ a: ["b", "b"] })).toEqual(namesFallbackA);
});
