import fs from "node:fs";
import path from "node:path";
import semver from "semver";
import Validator from "fastest-validator";
import { blacktreeError, BlacktreeError, ErrorType, FieldError } from "../errors";
import type { PluginsConfig, PluginEntry } from "../config/plugins-config";
import { BlacktreePlugin, compileParams, LaunchTarget, PLUGIN_API_VERSION, TaskType, ValidationSchema } from "./sdk";
import { PluginRegistry } from "./registry";
import { validationFields } from "../config/validation-fields";

/** Where the running code lives: the repository root, or dist/ when compiled. */
const APP_ROOT = path.resolve(__dirname, "../..");
const TYPESCRIPT = /\.[cm]?ts$/;

const validator = new Validator({ useNewCustomCheckerFunction: true });

const checkManifest = validator.compile({
  name: { type: "string", empty: false, max: 100 },
  version: { type: "string", optional: true, empty: false },
  apiVersion: { type: "string", empty: false },
  dependencies: { type: "record", optional: true, key: { type: "string", empty: false }, value: { type: "string", empty: false } },
  taskTypes: { type: "array", optional: true, items: "object" },
  targets: { type: "array", optional: true, items: "function" },
});

export interface LoadOptions {
  /** Directory relative `use` paths are resolved against (the config file's). */
  baseDir: string;
  /** For tests: plugins given as objects instead of module paths. */
  modules?: Record<string, unknown>;
}

/** Where a plugin came from: its `use` and the file it was loaded from (null for `modules`). */
export interface PluginOrigin {
  source: string;
  file: string | null;
}

/**
 * Loads every plugin of the config, checks each manifest (shape, API version range,
 * duplicates, dependencies on other plugins, each target's config against its schema) and
 * refuses a bad one with a coded error that names the plugin, its file and the field.
 * Runs before the broker starts.
 */
export function loadPlugins(config: PluginsConfig, opts: LoadOptions): PluginRegistry {
  const registry = new PluginRegistry();
  config.plugins.forEach((entry, index) => {
    const { plugin, origin } = importPlugin(entry, opts);
    registerPlugin(registry, plugin, origin, entry, index);
  });
  checkDependencies(registry);
  checkRouting(registry, config);
  return registry;
}

/**
 * `use` is a path (relative to the config file's directory, or absolute) or a package
 * name (resolved from the config file's directory, then the working directory), loaded
 * with `require`: compiled JavaScript, unless this process runs a TypeScript loader.
 * Relative paths that do not exist next to the config are tried next to the orchestrator
 * itself (the built-ins, also from dist/).
 */
function importPlugin(entry: PluginEntry, opts: LoadOptions): { plugin: BlacktreePlugin; origin: PluginOrigin } {
  if (opts.modules && entry.use in opts.modules) return { plugin: unwrapDefault(opts.modules[entry.use]) as BlacktreePlugin, origin: { source: entry.use, file: null } };
  const relative = entry.use.startsWith(".") || path.isAbsolute(entry.use);
  // Relative to the config file's directory first; the built-in plugins are also found in the app's own root.
  const candidates = relative ? [...new Set([path.resolve(opts.baseDir, entry.use), path.resolve(APP_ROOT, entry.use)])] : [entry.use];
  let firstError: unknown;
  for (const candidate of candidates) {
    let file: string;
    try {
      file = require.resolve(candidate, { paths: [opts.baseDir, process.cwd()] });
    } catch (err) {
      firstError ??= err;
      continue;
    }
    const origin = { source: entry.use, file };
    let mod: unknown;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = require(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (TYPESCRIPT.test(file) && (e instanceof SyntaxError || e?.code === "ERR_UNKNOWN_FILE_EXTENSION")) throw typeScriptPlugin(entry.use, file);
      throw loadError(origin, `failed to load: ${firstLine(e)}`, "PLUGIN_LOAD_FAILED");
    }
    return { plugin: unwrapDefault(mod) as BlacktreePlugin, origin };
  }
  if (relative) {
    const ts = candidates.flatMap((c) => [c, `${c}.ts`, path.join(c, "index.ts")]).find((c) => TYPESCRIPT.test(c) && exists(c));
    if (ts) throw typeScriptPlugin(entry.use, ts);
  }
  const where = relative
    ? `${candidates[0]} (relative to the config file's directory ${opts.baseDir}${candidates.length > 1 ? `; not in ${APP_ROOT} either` : ""})`
    : `as a package (${(firstError as Error)?.message?.split("\n")[0]})`;
  throw blacktreeError("PLUGIN_NOT_FOUND", `Plugin '${entry.use}' cannot be found: no module at ${where}`, { plugin: entry.use, fields: [{ field: "plugins[].use", message: `'${entry.use}' cannot be found` }] });
}

function typeScriptPlugin(use: string, file: string): BlacktreeError {
  return blacktreeError(
    "PLUGIN_LOAD_FAILED",
    `Plugin '${use}' (${file}) is TypeScript, which this orchestrator cannot load: compile the plugin (tsc) and point 'use' at its JavaScript (a directory or package whose main is .js), or in development run the orchestrator through a TypeScript loader (node --import tsx)`,
    { plugin: use, file },
  );
}

function exists(file: string): boolean {
  try {
    fs.accessSync(file);
    return true;
  } catch {
    return false;
  }
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split("\n")[0];
}

function unwrapDefault(mod: unknown): unknown {
  return mod && typeof mod === "object" && "default" in mod ? (mod as { default: unknown }).default : mod;
}

export function registerPlugin(registry: PluginRegistry, plugin: BlacktreePlugin, origin: PluginOrigin, entry: Pick<PluginEntry, "config" | "targets"> = {}, index = 0): void {
  const shape = plugin && typeof plugin === "object" ? checkManifest(plugin) : [{ field: "", message: "must export a plugin manifest object (module.exports or export default)" }];
  if (shape !== true) {
    throw pluginError("PLUGIN_INVALID", { name: origin.source, ...origin }, "is not a valid plugin manifest", fieldsOf(shape as any[]));
  }
  const at = { name: plugin.name, ...origin };
  if (!semver.validRange(plugin.apiVersion)) {
    throw pluginError("PLUGIN_INVALID", at, `has an invalid apiVersion range '${plugin.apiVersion}'`, [{ field: "apiVersion", message: "must be a semver range" }]);
  }
  if (!semver.satisfies(PLUGIN_API_VERSION, plugin.apiVersion)) {
    throw pluginError("PLUGIN_API_MISMATCH", at, `was written for plugin API ${plugin.apiVersion}, this orchestrator implements ${PLUGIN_API_VERSION}`, [
      { field: "apiVersion", message: `does not include ${PLUGIN_API_VERSION}` },
    ]);
  }
  if (plugin.version !== undefined && !semver.valid(plugin.version)) {
    throw pluginError("PLUGIN_INVALID", at, `has an invalid version '${plugin.version}'`, [{ field: "version", message: "must be a semver version" }]);
  }
  for (const [dep, range] of Object.entries(plugin.dependencies ?? {})) {
    if (!semver.validRange(range)) throw pluginError("PLUGIN_INVALID", at, `has an invalid range '${range}' for its dependency '${dep}'`, [{ field: `dependencies.${dep}`, message: "must be a semver range" }]);
  }
  if (registry.plugins.some((p) => p.name === plugin.name)) {
    throw pluginError("PLUGIN_DUPLICATE", at, "is loaded twice", [{ field: "name", message: "duplicate plugin name" }]);
  }
  (plugin.taskTypes ?? []).forEach((t, i) => registerTaskType(registry, at, t, i));
  const targets = (plugin.targets ?? []).map((factory) => factory());
  const configs = targetConfigs(at, targets, entry, index);
  targets.forEach((target, i) => registerTarget(registry, at, target, i, configs[i]));
  registry.plugins.push({ name: plugin.name, version: plugin.version ?? null, apiVersion: plugin.apiVersion, dependencies: plugin.dependencies ?? {}, source: origin.source, file: origin.file });
}

/**
 * Each target gets its own config: `targets.<name>` of the plugin's entry when given, else
 * `config` (the config of a plugin's only target, or of every target `targets` leaves out).
 * A `targets` key naming no target of the plugin, and `config` for a plugin without
 * targets (it would configure nothing), are refused.
 */
function targetConfigs(at: PluginAt, targets: LaunchTarget[], entry: Pick<PluginEntry, "config" | "targets">, index: number): Array<Record<string, unknown>> {
  const field = `plugins[${index}]`;
  const names = targets.map((t) => t?.name);
  if (entry.config !== undefined && targets.length === 0) {
    throw pluginError("TARGET_CONFIG_INVALID", at, "has no target to take `config`", [{ field: `${field}.config`, message: "the plugin has no target" }]);
  }
  for (const name of Object.keys(entry.targets ?? {})) {
    if (!names.includes(name)) {
      throw pluginError("TARGET_CONFIG_INVALID", at, `has no target '${name}' (its targets: ${names.join(", ") || "none"})`, [{ field: `${field}.targets.${name}`, message: "names no target of this plugin" }]);
    }
  }
  return targets.map((t) => entry.targets?.[t?.name] ?? entry.config ?? {});
}

function registerTaskType(registry: PluginRegistry, at: PluginAt, t: TaskType, i: number): void {
  const field = `taskTypes[${i}]`;
  if (!t || typeof t.name !== "string" || !/^[a-z][a-z0-9_-]{0,62}$/.test(t.name)) {
    throw pluginError("PLUGIN_INVALID", at, `${field}.name must be a lower-case name`, [{ field: `${field}.name`, message: "must match ^[a-z][a-z0-9_-]{0,62}$" }]);
  }
  if (typeof t.toWorkload !== "function") {
    throw pluginError("PLUGIN_INVALID", at, `task type '${t.name}' has no toWorkload()`, [{ field: `${field}.toWorkload`, message: "must be a function" }]);
  }
  if (registry.taskTypes.has(t.name)) {
    throw pluginError("PLUGIN_DUPLICATE", at, `task type '${t.name}' is already provided by plugin '${registry.taskTypes.get(t.name)!.plugin}'`, [
      { field: `${field}.name`, message: "duplicate task type" },
    ]);
  }
  let checkParams;
  try {
    checkParams = compileParams(t);
  } catch (err) {
    throw pluginError("PLUGIN_INVALID", at, `task type '${t.name}' has an invalid params schema: ${(err as Error).message}`, [{ field: `${field}.params`, message: (err as Error).message }]);
  }
  registry.taskTypes.set(t.name, { plugin: at.name, def: t, checkParams });
}

function registerTarget(registry: PluginRegistry, at: PluginAt, target: LaunchTarget, i: number, config: Record<string, unknown>): void {
  const field = `targets[${i}]`;
  for (const method of ["launch", "inspect", "stop"] as const) {
    if (typeof target?.[method] !== "function") {
      throw pluginError("PLUGIN_INVALID", at, `${field} has no ${method}()`, [{ field: `${field}.${method}`, message: "must be a function" }]);
    }
  }
  if (typeof target.name !== "string" || !/^[a-z][a-z0-9_-]{0,62}$/.test(target.name)) {
    throw pluginError("PLUGIN_INVALID", at, `${field}.name must be a lower-case name`, [{ field: `${field}.name`, message: "must match ^[a-z][a-z0-9_-]{0,62}$" }]);
  }
  if (registry.targets.has(target.name)) {
    throw pluginError("PLUGIN_DUPLICATE", at, `target '${target.name}' is already provided by plugin '${registry.targets.get(target.name)!.plugin}'`, [
      { field: `${field}.name`, message: "duplicate target" },
    ]);
  }
  const copy = structuredClone(config);
  const result = validator.validate(copy, { $$strict: true, ...((target.configSchema ?? {}) as ValidationSchema) });
  if (result !== true) {
    const fields = validationFields(result as any[], "config");
    throw pluginError("TARGET_CONFIG_INVALID", at, `target '${target.name}' config is invalid: ${fields.map((f) => f.message).join("; ")}`, fields);
  }
  registry.targets.set(target.name, { plugin: at.name, target, config: copy });
}

/** Every declared dependency is loaded, at a version in its range (any order in the config). */
function checkDependencies(registry: PluginRegistry): void {
  for (const p of registry.plugins) {
    for (const [dep, range] of Object.entries(p.dependencies)) {
      const found = registry.plugins.find((q) => q.name === dep);
      const at = { name: p.name, source: p.source, file: p.file };
      if (!found) {
        throw pluginError("PLUGIN_DEPENDENCY_UNMET", at, `needs plugin '${dep}' (${range}), which is not loaded: add it to the plugins config`, [{ field: `dependencies.${dep}`, message: "is not loaded" }]);
      }
      if (range !== "*" && (found.version === null || !semver.satisfies(found.version, range, { includePrerelease: true }))) {
        const has = found.version === null ? "declares no version" : `is version ${found.version}`;
        throw pluginError("PLUGIN_DEPENDENCY_UNMET", at, `needs plugin '${dep}' ${range}, but the loaded '${dep}' ${has}`, [{ field: `dependencies.${dep}`, message: `must satisfy ${range}` }]);
      }
    }
  }
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

interface PluginAt extends PluginOrigin {
  name: string;
}

function loadError(origin: PluginOrigin, what: string, type: ErrorType): BlacktreeError {
  return blacktreeError(type, `Plugin '${origin.source}' (${origin.file}) ${what}`, { plugin: origin.source, file: origin.file });
}

/** "Plugin 'name' (file) …": every load error names the plugin and, when it came from a file, the file. */
function pluginError(type: ErrorType, at: PluginAt, what: string, fields: FieldError[]): BlacktreeError {
  const from = at.file ? ` (${at.file})` : "";
  return blacktreeError(type, `Plugin '${at.name}'${from} ${what}`, { plugin: at.name, ...(at.file ? { file: at.file } : {}), fields });
}
