import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

/**
 * The argv that runs a Node worker module with this very Node binary, for a task type's
 * `toWorkload` on targets that run local commands (process, pool). `file` is the module
 * without its extension (or with `.js`/`.ts`): `<file>.js` when it exists (a compiled
 * plugin), else `<file>.ts` through tsx, resolved from the file's own directory
 * (development; tsx must be installed there). The loader is passed as an absolute file
 * URL, so the worker does not depend on its working directory.
 */
export function nodeWorkerCommand(file: string): string[] {
  const base = file.replace(/\.(c?js|c?ts|mjs|mts)$/, "");
  if (fs.existsSync(`${base}.js`)) return [process.execPath, `${base}.js`];
  if (!fs.existsSync(`${base}.ts`)) throw new Error(`nodeWorkerCommand: no worker module at ${base}.js or ${base}.ts`);
  let tsx: string;
  try {
    tsx = require.resolve("tsx", { paths: [path.dirname(base)] });
  } catch {
    throw new Error(`nodeWorkerCommand: ${base}.ts is TypeScript and tsx cannot be found from ${path.dirname(base)}: compile the plugin (tsc), or install tsx for development`);
  }
  return [process.execPath, "--import", pathToFileURL(tsx).href, `${base}.ts`];
}
