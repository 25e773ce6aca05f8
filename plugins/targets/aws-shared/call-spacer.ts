/**
 * Keeps calls of one kind under `perSecond`: each call waits for its slot, and slots are
 * at least 1000/perSecond ms apart (a token bucket of depth one), so no 1 s window ever
 * holds more than `perSecond` calls. A 5% margin absorbs jitter between here and AWS.
 */
export class CallSpacer {
  private readonly intervalMs: number;
  private last = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(perSecond: number) {
    this.intervalMs = (1000 / perSecond) * 1.05;
  }

  take(): Promise<void> {
    const slot = this.queue.then(async () => {
      const wait = this.last + this.intervalMs - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.last = Date.now();
    });
    this.queue = slot;
    return slot;
  }
}

/** The SDK middleware that makes every HTTP attempt of `commandName` (retries included) take a slot. */
export function spaceCommand(client: { middlewareStack: { add(mw: any, opts: any): void } }, commandName: string, spacer: CallSpacer): void {
  client.middlewareStack.add(
    (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      if (context.commandName === commandName) await spacer.take();
      return next(args);
    },
    // After the SDK's retry middleware (priority high in the same step): each retry is spaced too.
    { step: "finalizeRequest", priority: "low", name: `blacktreeSpace${commandName}` },
  );
}
