import path from "node:path";
import semver from "semver";
import Validator from "fastest-validator";
import { blacktreeError, BlacktreeError, FieldError } from "../errors";
import type { PluginsConfig, PluginEntry } from "../config/plugins-config";
import { BlacktreePlugin, LaunchTarget, PLUGIN_API_VERSION, TaskType } from "./sdk";
import { PluginRegistry } from "./registry";
import { validationFields } from "../config/validation-fields";

/** Where the running code lives: the repository root, or dist/ when compiled. */
const APP_ROOT = path.resolve(__dirname, "../..");

const validator = new Validator({ useNewCustomCheckerFunction: true });

const checkManifest = validator.compile({
  name: { type: "string", empty: false, max: 100 },
  apiVersion: { type: "string", empty: false },
  taskTypes: { type: "array", optional: true, items: "object" },
  targets: { type: "array", optional: true, items: "function" },
});

export interface LoadOptions {
  /** Directory relative `use` paths are resolved against (the config file's). */
  baseDir: string;
  /** For tests: plugins given as objects instead of module paths. */
  modules?: Record<string, unknown>;
}

/**
 * Loads every plugin of the config, checks each manifest (shape, API version range,
 * duplicates, target config against its schema) and refuses a bad one with a coded
 * error that names the plugin and the field. Runs before the broker starts.
 */
export function loadPlugins(config: PluginsConfig, opts: LoadOptions): PluginRegistry {
  const registry = new PluginRegistry();
  for (const entry of config.plugins) {
    const { plugin, source } = importPlugin(entry, opts);
    registerPlugin(registry, plugin, source, entry.config ?? {});
  }
  checkRouting(registry, config);
  return registry;
}

function importPlugin(entry: PluginEntry, opts: LoadOptions): { plugin: BlacktreePlugin; source: string } {
  if (opts.modules && entry.use in opts.modules) return { plugin: unwrapDefault(opts.modules[entry.use]) as BlacktreePlugin, source: entry.use };
  const relative = entry.use.startsWith(".") || path.isAbsolute(entry.use);
  // Relative to the config file's directory first; the built-in plugins are also found in the app's own root.
  const candidates = relative ? [...new Set([path.resolve(opts.baseDir, entry.use), path.resolve(APP_ROOT, entry.use)])] : [entry.use];
  let firstError: unknown;
  for (const candidate of candidates) {
    let resolved: string;
    try {
      resolved = require.resolve(candidate, { paths: [opts.baseDir, process.cwd()] });
    } catch (err) {
      firstError ??= err;
      continue;
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return { plugin: unwrapDefault(require(resolved)) as BlacktreePlugin, source: entry.use };
  }
  const where = relative
    ? `${candidates[0]} (relative to the config file's directory ${opts.baseDir}${candidates.length > 1 ? `; not in ${APP_ROOT} either` : ""})`
    : `as a package (${(firstError as Error)?.message?.split("\n")[0]})`;
  throw blacktreeError("PLUGIN_NOT_FOUND", `Plugin '${entry.use}' cannot be found: no module at ${where}`, { plugin: entry.use, fields: [{ field: "plugins[].use", message: `'${entry.use}' cannot be found` }] });
}

function unwrapDefault(mod: unknown): unknown {
  return mod && typeof mod === "object" && "default" in mod ? (mod as { default: unknown }).default : mod;
}

export function registerPlugin(registry: PluginRegistry, plugin: BlacktreePlugin, source: string, targetConfig: Record<string, unknown>): void {
  const shape = plugin && typeof plugin === "object" ? checkManifest(plugin) : [{ field: "", message: "must export a plugin manifest object" }];
  if (shape !== true) {
    throw pluginError("PLUGIN_INVALID", source, "is not a valid plugin manifest", fieldsOf(shape as any[]));
  }
  const name = plugin.name;
  if (!semver.validRange(plugin.apiVersion)) {
    throw pluginError("PLUGIN_INVALID", name, `has an invalid apiVersion range '${plugin.apiVersion}'`, [{ field: "apiVersion", message: "must be a semver range" }]);
  }
  if (!semver.satisfies(PLUGIN_API_VERSION, plugin.apiVersion)) {
    throw pluginError("PLUGIN_API_MISMATCH", name, `was written for plugin API ${plugin.apiVersion}, this orchestrator implements ${PLUGIN_API_VERSION}`, [
      { field: "apiVersion", message: `does not include ${PLUGIN_API_VERSION}` },
    ]);
  }
  if (registry.plugins.some((p) => p.name === name)) {
    throw pluginError("PLUGIN_DUPLICATE", name, "is loaded twice", [{ field: "name", message: "duplicate plugin name" }]);
  }
  (plugin.taskTypes ?? []).forEach((t, i) => registerTaskType(registry, name, t, i));
  (plugin.targets ?? []).forEach((factory, i) => registerTarget(registry, name, factory(), i, targetConfig));
  registry.plugins.push({ name, apiVersion: plugin.apiVersion, source });
}

function registerTaskType(registry: PluginRegistry, plugin: string, t: TaskType, i: number): void {
  const field = `taskTypes[${i}]`;
  if (!t || typeof t.name !== "string" || !/^[a-z][a-z0-9_-]{0,62}$/.test(t.name)) {
    throw pluginError("PLUGIN_INVALID", plugin, `${field}.name must be a lower-case name`, [{ field: `${field}.name`, message: "must match ^[a-z][a-z0-9_-]{0,62}$" }]);
  }
  if (typeof t.toWorkload !== "function") {
    throw pluginError("PLUGIN_INVALID", plugin, `task type '${t.name}' has no toWorkload()`, [{ field: `${field}.toWorkload`, message: "must be a function" }]);
  }
  if (registry.taskTypes.has(t.name)) {
    throw pluginError("PLUGIN_DUPLICATE", plugin, `task type '${t.name}' is already provided by plugin '${registry.taskTypes.get(t.name)!.plugin}'`, [
      { field: `${field}.name`, message: "duplicate task type" },
    ]);
  }
  let checkParams;
  try {
    checkParams = validator.compile({ $$strict: "remove", ...t.params });
  } catch (err) {
    throw pluginError("PLUGIN_INVALID", plugin, `task type '${t.name}' has an invalid params schema: ${(err as Error).message}`, [{ field: `${field}.params`, message: (err as Error).message }]);
  }
  registry.taskTypes.set(t.name, { plugin, def: t, checkParams });
}

function registerTarget(registry: PluginRegistry, plugin: string, target: LaunchTarget, i: number, config: Record<string, unknown>): void {
  const field = `targets[${i}]`;
  for (const method of ["launch", "inspect", "stop"] as const) {
    if (typeof target?.[method] !== "function") {
      throw pluginError("PLUGIN_INVALID", plugin, `${field} has no ${method}()`, [{ field: `${field}.${method}`, message: "must be a function" }]);
    }
  }
  if (typeof target.name !== "string" || !/^[a-z][a-z0-9_-]{0,62}$/.test(target.name)) {
    throw pluginError("PLUGIN_INVALID", plugin, `${field}.name must be a lower-case name`, [{ field: `${field}.name`, message: "must match ^[a-z][a-z0-9_-]{0,62}$" }]);
  }
  if (registry.targets.has(target.name)) {
    throw pluginError("PLUGIN_DUPLICATE", plugin, `target '${target.name}' is already provided by plugin '${registry.targets.get(target.name)!.plugin}'`, [
      { field: `${field}.name`, message: "duplicate target" },
    ]);
  }
  const copy = structuredClone(config);
  const result = validator.validate(copy, { $$strict: true, ...(target.configSchema ?? {}) });
  if (result !== true) {
    const fields = validationFields(result as any[], "config");
    throw pluginError("TARGET_CONFIG_INVALID", plugin, `target '${target.name}' config is invalid: ${fields.map((f) => f.message).join("; ")}`, fields);
  }
  registry.targets.set(target.name, { plugin, target, config: copy });
}

function checkRouting(registry: PluginRegistry, config: PluginsConfig): void {
  const fields: FieldError[] = [];
  const known = (t: string) => registry.targets.has(t);
  if (!known(config.routing.default)) fields.push({ field: "routing.default", message: `target '${config.routing.default}' is not loaded` });
  for (const [type, target] of Object.entries(config.routing.byType)) {
    if (!registry.taskTypes.has(type)) fields.push({ field: `routing.byType.${type}`, message: `task type '${type}' is not loaded` });
    if (!known(target)) fields.push({ field: `routing.byType.${type}`, message: `target '${target}' is not loaded` });
  }
  for (const [from, list] of Object.entries(config.routing.fallback)) {
    for (const t of [from, ...list]) if (!known(t)) fields.push({ field: `routing.fallback.${from}`, message: `target '${t}' is not loaded` });
  }
  for (const type of Object.keys(config.taskTypes)) {
    if (!registry.taskTypes.has(type)) fields.push({ field: `taskTypes.${type}`, message: `task type '${type}' is not loaded` });
  }
  // A limit on a type or target that does not exist limits nothing: a typo, refused.
  for (const type of Object.keys(config.limits.byType ?? {})) {
    if (!registry.taskTypes.has(type)) fields.push({ field: `limits.byType.${type}`, message: `task type '${type}' is not loaded` });
  }
  for (const target of Object.keys(config.limits.byTarget ?? {})) {
    if (!known(target)) fields.push({ field: `limits.byTarget.${target}`, message: `target '${target}' is not loaded` });
  }
  if (fields.length) throw blacktreeError("CONFIG_INVALID", `plugins config: ${fields.map((f) => `${f.field} ${f.message}`).join("; ")}`, { fields });
}

function fieldsOf(errors: any[]): FieldError[] {
  return errors.map((e) => ({ field: e.field ?? "", message: e.message, type: e.type }));
}

function pluginError(type: "PLUGIN_INVALID" | "PLUGIN_API_MISMATCH" | "PLUGIN_DUPLICATE" | "TARGET_CONFIG_INVALID", plugin: string, what: string, fields: FieldError[]): BlacktreeError {
  return blacktreeError(type, `Plugin '${plugin}' ${what}`, { plugin, fields });
}
