import type { ServiceSchema } from "moleculer";
import { invalidEnv } from "../lib/config/env";
import { NodeEngine } from "../lib/engine/node";
import type { Runtime } from "../lib/runtime";
import { changesService } from "./changes.service";
import { dispatcherService } from "./dispatcher.service";
import { gatewayService } from "./gateway.service";
import { intakeService } from "./intake.service";
import { lifecycleService } from "./lifecycle.service";
import { statusService } from "./status.service";
import { targetHostService } from "./target-host.service";
import { validatorService } from "./validator.service";

export const CORE_SERVICES = ["validator", "intake", "dispatcher", "lifecycle", "status", "gateway"] as const;

/**
 * The services this node runs: all of them by default, or those named in SERVICES
 * (`targets` hosts every loaded launch target, `targets.<name>` one of them).
 */
export function nodeServices(rt: Runtime): ServiceSchema[] {
  const wanted = rt.env.services;
  for (const name of wanted ?? []) {
    const target = name.startsWith("targets.") ? name.slice("targets.".length) : null;
    if (target !== null && !rt.registry.target(target)) {
      invalidEnv("SERVICES", `names '${name}', but no launch target '${target}' is loaded (loaded: ${[...rt.registry.targets.keys()].join(", ") || "none"})`);
    }
  }
  const runs = (name: string) => !wanted || wanted.includes(name);
  const node = new NodeEngine(rt);
  const factories: Record<(typeof CORE_SERVICES)[number], () => ServiceSchema> = {
    validator: () => validatorService(rt),
    intake: () => intakeService(rt),
    dispatcher: () => dispatcherService(node),
    lifecycle: () => lifecycleService(node),
    status: () => statusService(rt),
    gateway: () => gatewayService(rt),
  };
  const schemas = [changesService(rt), ...CORE_SERVICES.filter(runs).map((name) => factories[name]())];
  for (const loaded of rt.registry.targets.values()) {
    if (runs("targets") || runs(`targets.${loaded.target.name}`)) schemas.push(targetHostService(rt, loaded));
  }
  return schemas;
}
