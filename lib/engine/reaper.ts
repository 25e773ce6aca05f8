import { describeError } from "../errors";
import type { EngineContext } from "./context";
import { TARGET_CALL_TIMEOUTS } from "./targets";
import { withTimeout } from "./work-pool";

/** Stops workers that no attempt holding compute owns (a launch that timed out but happened, a crash mid-cancel, …). */
export class Reaper {
  private running: Promise<void> | null = null;

  constructor(private readonly c: EngineContext) {}

  /** One round in the background; a round still under way is not started again. */
  kick(): void {
    this.running ??= this.round().finally(() => (this.running = null));
  }

  async stop(): Promise<void> {
    await this.running;
  }

  private async round(): Promise<void> {
    for (const name of this.c.registry.targets.keys()) {
      let keys: string[] | null;
      try {
        keys = await withTimeout(this.c.targets.list(name), TARGET_CALL_TIMEOUTS.list, `list on '${name}'`);
      } catch {
        continue; // the target is not reachable now; next round
      }
      if (!keys?.length) continue;
      // Read the live set after the listing: a worker launched meanwhile was claimed before it.
      const live = new Set((await this.c.store.activeAttempts()).map((a) => a.attempt.key));
      for (const key of keys.filter((k) => !live.has(k))) {
        this.c.logger.warn(`⚠️ stopping orphan worker ${key} on '${name}': no live attempt owns it`);
        await withTimeout(this.c.targets.stop(name, { key }, "orphan: no live attempt owns it"), TARGET_CALL_TIMEOUTS.stop, "stop").catch((err: unknown) => {
          this.c.logger.warn(`⚠️ could not stop orphan ${key}: ${describeError(err).message}`);
        });
      }
    }
  }
}
