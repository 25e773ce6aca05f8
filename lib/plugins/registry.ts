import type { SyncCheckFunction, AsyncCheckFunction } from "fastest-validator";
import type { LaunchTarget, TaskType } from "./sdk";

export interface LoadedTaskType {
  plugin: string;
  def: TaskType<any>;
  /** The compiled params schema. */
  checkParams: SyncCheckFunction | AsyncCheckFunction;
}

export interface LoadedTarget {
  plugin: string;
  target: LaunchTarget<any, any>;
  /** The target's config after its schema filled defaults. */
  config: Record<string, unknown>;
}

/** What the loader produced: every task type and launch target, by name. */
export class PluginRegistry {
  readonly plugins: Array<{ name: string; apiVersion: string; source: string }> = [];
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
      plugins: this.plugins,
      taskTypes: [...this.taskTypes.values()].map(({ plugin, def }) => ({
        name: def.name,
        plugin,
        params: def.params,
        secretFields: def.secretFields ?? [],
        defaults: def.defaults ?? {},
      })),
      targets: [...this.targets.values()].map(({ plugin, target }) => ({ name: target.name, plugin, configSchema: target.configSchema })),
    };
  }
}
