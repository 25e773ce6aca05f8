/**
 * Issue 13 — config mistakes that passed or were reported badly: unknown keys in
 * `policies.*` and `taskTypes.*` were accepted; `limits` naming an unknown type or target
 * was accepted; error detail lines read `undefined:` and `config.:`; a relative `use` path was
 * reported against the wrong directory; broken JSON gave a character position only; and a
 * port already in use left the process running without a gateway.
 *
 * FAILS ON MAIN: the typos below loaded (`expected CONFIG_INVALID, got a config`); the
 * detail lines were `- undefined: The object '' contains forbidden keys: 'limit'.` and
 * `- config.: …`; the missing plugin was reported as `<repo>/plugins/nope`; the JSON error
 * said `at position 59` with no line; and with the port taken the process was still running
 * after 30 s (`expected exit code 1, received null`).
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { loadPluginsConfig, parsePluginsConfig } from "../../../lib/config/plugins-config";
import { loadPlugins } from "../../../lib/plugins/loader";
import { runUntilExit } from "../../support/entry-point";
import { ROOT, tempDir } from "../../support/orchestrator";

const shipped = () => JSON.parse(fs.readFileSync(path.join(ROOT, "plugins.config.json"), "utf8"));
const load = (raw: unknown) => {
  const config = parsePluginsConfig(raw, {}, "development");
  loadPlugins(config, { baseDir: ROOT });
  return config;
};
function refusal(fn: () => unknown): { type: string; message: string; fields: Array<{ field: string; message: string }> } {
  try {
    fn();
  } catch (err: any) {
    return { type: err.type, message: err.message, fields: err.data?.fields ?? [] };
  }
  throw new Error("expected the config to be refused");
}

test.each([
  ["policies.production.allowLocalRepos", (c: any) => (c.policies.production.allowLocalRepos = true)],
  ["policies.development.alowedHosts", (c: any) => (c.policies.development.alowedHosts = ["github.com"])],
  ["taskTypes.build.maxTimeout", (c: any) => (c.taskTypes.build.maxTimeout = { runTimeout: 1 })],
  ["taskTypes.build.coalese", (c: any) => (c.taskTypes.build.coalese = true)],
  ["limits.byType.biuld", (c: any) => (c.limits.byType = { biuld: 2 })],
  ["limits.byTarget.nowhere", (c: any) => (c.limits.byTarget = { nowhere: 2 })],
  ["taskTypes.buidl", (c: any) => (c.taskTypes.buidl = {})],
])("%s is refused, named", (field, change) => {
  const raw = shipped();
  change(raw);
  const r = refusal(() => load(raw));
  expect(r.type).toBe("CONFIG_INVALID");
  expect(r.fields.map((f) => f.field)).toContain(field);
});

test("a strict object's unknown keys are named by path, never 'undefined' or 'config.'", () => {
  const root = shipped();
  root.limit = {};
  const r = refusal(() => load(root));
  expect(r.fields).toEqual([expect.objectContaining({ field: "limit", message: expect.stringMatching(/did you mean 'limits'/) })]);
  const target = shipped();
  target.plugins[4].config = { stopGrace: 5 };
  const t = refusal(() => load(target));
  expect(t.fields.map((f) => f.field)).toEqual(["config.stopGrace"]);
});

test("a relative `use` is reported against the config file's directory", () => {
  const dir = tempDir();
  const raw = shipped();
  raw.plugins.push({ use: "./plugins/nope" });
  const config = parsePluginsConfig(raw, {}, "development");
  const r = refusal(() => loadPlugins(config, { baseDir: dir }));
  expect(r.type).toBe("PLUGIN_NOT_FOUND");
  expect(r.message).toContain(path.join(dir, "plugins/nope"));
});

test("broken JSON is reported with its line and column", () => {
  const file = path.join(tempDir(), "plugins.config.json");
  fs.writeFileSync(file, '{ "plugins": [\n  { "use": "./plugins/task-types/build" }\n  { "use": "x" } ] }\n');
  const r = refusal(() => loadPluginsConfig(file, {}, "development"));
  expect(r.type).toBe("CONFIG_INVALID");
  expect(r.message).toMatch(/line 3, column 3/);
});

test("the entry point prints each error with its field; a port already in use is a clear start-up error, and the process exits", async () => {
  const dir = tempDir();
  const raw = shipped();
  raw.limit = {};
  fs.writeFileSync(path.join(dir, "bad.json"), JSON.stringify(raw));
  const bad = await runUntilExit({ DATA_DIR: path.join(dir, "data-bad"), PLUGINS_CONFIG: path.join(dir, "bad.json"), PORT: "0" });
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/^ {3}- limit: /m);
  expect(bad.stderr).not.toMatch(/undefined:|config\.:/);

  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", () => resolve()));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const res = await runUntilExit({ DATA_DIR: path.join(dir, "data-port"), PLUGINS_CONFIG: path.join(ROOT, "plugins.config.json"), PORT: String(port), HOST: "127.0.0.1" }, 30_000);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`port ${port} .*already in use`));
  } finally {
    taken.close();
  }
}, 90_000);
