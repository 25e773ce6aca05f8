/** A deploy or stop that failed for a reason the worker understands; `retryable: false` for bad settings or input. */
export class DeployFailure extends Error {
  constructor(
    message: string,
    readonly retryable?: boolean,
  ) {
    super(message);
    this.name = "DeployFailure";
  }
}

/** The message of any thrown value, for a log line. */
export function messageOf(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}
