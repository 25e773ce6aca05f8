import type { DeployRequest } from "./settings";

/** Where the deploy worker's lines go (the job's log). */
export interface DeployLog {
  progress(message: string): void;
  warn(message: string): void;
}

/**
 * Runs a deployment's image on one platform. Each method resolves with the line that
 * says what it did, or throws a DeployFailure; a failed deploy leaves the previous
 * version running.
 */
export interface Deployer {
  /** Starts `req.imageUrl`, waits until it answers (or is steady), then retires the previous version. */
  deploy(req: DeployRequest): Promise<string>;
  /** Removes (or scales to zero) everything the deploys of this deployment started. */
  stop(deploymentId: string): Promise<string>;
  /** A deploy cut short (SIGTERM, the attempt is over): undo what it started, keep the previous version. */
  abort(): Promise<void>;
}
