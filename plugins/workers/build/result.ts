import type { WorkerResult } from "@blacktree/sdk/worker";

/** What the worker reports through the worker contract and prints as its last line. */
export interface BuildResult extends WorkerResult {
  success: boolean;
  /** Builds only: the image built, or null when none was. Other jobs leave it out. */
  imageUrl?: string | null;
  error: string | null;
  message: string;
  /** Only when the worker knows: false for bad input, a missing branch, … */
  retryable?: boolean;
}

export const EXIT_SUCCESS = 0;
export const EXIT_FAILURE = 1;
/** The build's input is wrong (missing Dockerfile, path escaping the repository): retrying cannot help. */
export const EXIT_BAD_INPUT = 2;

/** A failure the worker understands, with the exit code and retry hint that go with it. */
export class BuildFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: typeof EXIT_FAILURE | typeof EXIT_BAD_INPUT,
    readonly retryable?: boolean,
  ) {
    super(message);
    this.name = "BuildFailure";
  }
}

export function badInput(message: string): BuildFailure {
  return new BuildFailure(message, EXIT_BAD_INPUT, false);
}

export function failureResult(err: unknown, action: "build" | "test" = "build"): { result: BuildResult; exitCode: number } {
  const failure = err instanceof BuildFailure ? err : new BuildFailure(`unexpected error: ${(err as Error)?.message ?? String(err)}`, EXIT_FAILURE);
  const result: BuildResult = action === "build" ? { success: false, imageUrl: null, error: failure.message, message: "build failed" } : { success: false, error: failure.message, message: "test failed" };
  if (failure.retryable !== undefined) result.retryable = failure.retryable;
  return { result, exitCode: failure.exitCode };
}
