import type { JobState } from "../jobs/states";

/**
 * The CLI's exit codes, one per outcome a script may branch on. Only a job that ended
 * `succeeded` (or a command that did what it was asked) exits 0.
 */
export const EXIT = {
  ok: 0,
  /** The watched job ended `failed`; also any error without a code of its own. */
  failed: 1,
  /** Unknown command or flag, bad arguments. */
  usage: 2,
  timedOut: 3,
  cancelled: 4,
  rejected: 5,
  /** The API refused the request (401, 403, 404, 409, 422, …). */
  api: 6,
  /** The node could not be reached, or a stream stayed cut past the reconnect budget. */
  connection: 7,
  /** Interrupted (Ctrl-C). */
  interrupted: 130,
} as const;

/** The exit code of a job's final state. */
export function exitCodeOfState(state: JobState | string): number {
  switch (state) {
    case "succeeded":
      return EXIT.ok;
    case "timed_out":
      return EXIT.timedOut;
    case "cancelled":
      return EXIT.cancelled;
    case "rejected":
      return EXIT.rejected;
    default:
      return EXIT.failed;
  }
}

/** An error the CLI reports as one clear line (plus details) and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = "CliError";
  }
}
