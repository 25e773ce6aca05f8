import path from "node:path";
import { isReferenceWorker, nodeWorkerCommand } from "@blacktree/sdk";

/**
 * The host's own copy of a reference worker (plugins/workers/, compiled or through tsx):
 * what the process and pool targets run for `Workload.worker`. Null for a name that is not
 * a reference worker (a plugin's own worker exists only in its image).
 */
export function hostWorkerCommand(name: string): string[] | null {
  return isReferenceWorker(name) ? nodeWorkerCommand(path.join(__dirname, name)) : null;
}
