/**
 * Readiness of this node's outside connections (RabbitMQ, Redis), for `/health`. Each
 * registers a probe when it starts and removes it when it stops.
 */
export interface ReadinessProbe {
  (): { ok: boolean; error?: string };
}

const probes = new Map<string, ReadinessProbe>();

export function registerReadiness(name: string, probe: ReadinessProbe): void {
  probes.set(name, probe);
}

export function unregisterReadiness(name: string): void {
  probes.delete(name);
}

export function readinessChecks(): Record<string, { ok: boolean; error?: string }> {
  const out: Record<string, { ok: boolean; error?: string }> = {};
  for (const [name, probe] of probes) out[name] = probe();
  return out;
}
