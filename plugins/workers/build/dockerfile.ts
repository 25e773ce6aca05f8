import fs from "node:fs";
import path from "node:path";
import { badInput } from "./result";

export interface BuildInputs {
  /** Absolute, inside the clone. */
  contextDir: string;
  dockerfile: string;
}

function isInside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root + path.sep);
}

function realpathOrNull(p: string): string | null {
  try {
    return fs.realpathSync(p);
  } catch {
    return null;
  }
}

/**
 * Finds the build context and Dockerfile in the clone. The paths were validated upstream;
 * this checks again after resolving `..` and symlinks (a repository can commit a symlink
 * to /etc), so nothing outside the clone is ever read or sent to the Docker engine.
 */
export function locateBuildInputs(cloneDir: string, contextDir: string, dockerfilePath: string, branch: string): BuildInputs {
  const root = fs.realpathSync(cloneDir);
  const shownPath = path.posix.join(contextDir, dockerfilePath);
  const context = path.resolve(root, contextDir);
  const dockerfile = path.resolve(context, dockerfilePath);
  if (!isInside(root, context)) throw badInput(`contextDir "${contextDir}" points outside the repository`);
  if (!isInside(root, dockerfile)) throw badInput(`dockerFilePath "${shownPath}" points outside the repository`);

  const realContext = realpathOrNull(context);
  if (!realContext || !fs.statSync(realContext).isDirectory()) throw badInput(`context directory "${contextDir}" not found in ${branch}`);
  if (!isInside(root, realContext)) throw badInput(`contextDir "${contextDir}" points outside the repository (through a symlink)`);
  const realDockerfile = realpathOrNull(dockerfile);
  if (!realDockerfile) throw badInput(`Dockerfile not found at ${shownPath} in ${branch}`);
  if (!isInside(root, realDockerfile)) throw badInput(`dockerFilePath "${shownPath}" points outside the repository (through a symlink)`);
  if (!fs.statSync(realDockerfile).isFile()) throw badInput(`Dockerfile at ${shownPath} in ${branch} is not a regular file`);
  return { contextDir: realContext, dockerfile: realDockerfile };
}
