/** Schema fragments for the fields of the Blacktree DeploymentMessage, shared by the built-in task types. */
import { checkRelativePath, deploymentIdRule, fieldError, type TaskJob } from "@blacktree/sdk";

/** Required here: every built-in job belongs to a deployment. */
export const deploymentId = deploymentIdRule;
export const token = { type: "string", optional: true, max: 4096 };
export const repository = { type: "string", empty: false, max: 2048 };
export const branch = { type: "string", optional: true, default: "main", max: 255 };
export const relativePath = (def: string) => ({ type: "string", optional: true, default: def, max: 1024 });
/** The backend sends ports as strings ("3000"), sometimes empty: normalized in `checkPort`. */
export const portNumber = { type: "any", optional: true };
export const autoDeploy = { type: "boolean", optional: true, default: false, convert: true };

export function checkPort(job: TaskJob<any>): void {
  const v = job.params.portNumber;
  if (v === undefined || v === null || v === "") {
    delete job.params.portNumber;
    return;
  }
  const n = typeof v === "string" && /^\d{1,5}$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 65535) fieldError("portNumber", "must be a port number from 1 to 65535");
  job.params.portNumber = n;
}

export function checkPaths(job: TaskJob<any>, names: string[]): void {
  for (const name of names) {
    if (typeof job.params[name] === "string") job.params[name] = checkRelativePath(job.params[name] as string, name, { allowEmpty: name === "composeFilePath" });
  }
}

/**
 * The image's repository and tag, `blacktree/<deployment>:<job>-<attempt>` (lower-case, as
 * Docker wants). One tag per attempt: a retried attempt pushes under its own tag, so a tag
 * never points at two different images.
 */
export function imageTag(job: TaskJob<any>): string {
  const jobPart = job.id.slice(-12).toLowerCase().replace(/[^a-z0-9_.-]/g, "-");
  return `blacktree/${(job.deploymentId ?? "job").toLowerCase()}:${jobPart}-${job.attempt}`;
}
