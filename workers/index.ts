import path from "node:path";
import { pathToFileURL } from "node:url";

/** The reference workers shipped in this folder. */
export type ReferenceWorkerName = "build-worker" | "deploy-worker";

/**
 * The argv that runs a reference worker with this very Node binary. Compiled (dist/)
 * the worker is plain JS next to this file; from TypeScript sources (ts-jest, tsx) it
 * runs through tsx's loader. The loader is passed as an absolute file URL: a bare
 * `--import tsx` is resolved from the worker's working directory, which need not be
 * this project (the worker fails with ERR_MODULE_NOT_FOUND there).
 */
export function referenceWorkerCommand(name: ReferenceWorkerName): string[] {
  if (__filename.endsWith(".js")) return [process.execPath, path.join(__dirname, `${name}.js`)];
  return [process.execPath, "--import", pathToFileURL(require.resolve("tsx")).href, path.join(__dirname, `${name}.ts`)];
}
