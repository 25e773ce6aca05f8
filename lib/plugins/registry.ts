import type { LaunchTarget, ParamsCheck, TaskType } from "./sdk";

export interface LoadedTaskType {
  plugin: string;
  def: TaskType<any>;
  /** The compiled params schema (the SDK's `compileParams`). */
  checkParams: ParamsCheck;
}

export interface LoadedTarget {
  plugin: string;
  target: LaunchTarget<any, any>;
  /** The target's config after its schema filled defaults. */
  config: Record<string, unknown>;
}

export interface LoadedPlugin {
  name: string;
  version: string | null;
  apiVersion: string;
  /** Other plugins it needs: name → semver range (checked at load). */
  dependencies: Record<string, string>;
  /** Its `use` in the plugins config. */
  source: string;
  /** The file it was loaded from (null when given as an object, in tests). */
  file: string | null;
}

/** What the loader produced: every task type and launch target, by name. */
export class PluginRegistry {
  readonly plugins: LoadedPlugin[] = [];
  readonly taskTypes = new Map<string, LoadedTaskType>();
  readonly targets = new Map<string, LoadedTarget>();

  taskType(name: string): LoadedTaskType | undefined {
    return this.taskTypes.get(name);
  }

  target(name: string): LoadedTarget | undefined {
    return this.targets.get(name);
  }

  /** The public description served by GET /api/plugins. */
  describe() {
    return {
      plugins: this.plugins.map(({ name, version, apiVersion, dependencies, source }) => ({ name, version, apiVersion, dependencies, source })),
      taskTypes: [...this.taskTypes.values()].map(({ plugin, def }) => ({
        name: def.name,
        plugin,
        params: plainSchema(def.params),
        secretFields: def.secretFields ?? [],
        defaults: def.defaults ?? {},
      })),
      targets: [...this.targets.values()].map(({ plugin, target }) => ({ name: target.name, plugin, configSchema: plainSchema(target.configSchema) })),
    };
  }
}

/** A schema as JSON shows it: a RegExp (a `pattern`) as its source, which JSON would turn into `{}`. */
export function plainSchema<T>(schema: T): T {
  if (schema instanceof RegExp) return schema.source as T;
  if (Array.isArray(schema)) return schema.map(plainSchema) as T;
  if (schema && typeof schema === "object") return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, plainSchema(v)])) as T;
  return schema;
}
