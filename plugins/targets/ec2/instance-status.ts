import type { Instance } from "@aws-sdk/client-ec2";
import type { TargetStatus } from "@blacktree/sdk";
import { EXIT_CODE_TAG } from "./user-data";

const ENDED = new Set(["shutting-down", "terminated", "stopping", "stopped"]);

/**
 * An instance as a target status. EC2 does not know a container's exit code: the user
 * data tags it (`blacktree.exit-code`) just before powering off.
 * - pending → pending; running → running;
 * - shutting-down/terminated/stopping/stopped with the tag → exited{exitCode};
 * - the same without the tag → lost (terminated from outside, or the worker could not tag):
 *   a worker that already reported its result still ends as it reported (see the lifecycle).
 */
export function instanceStatus(key: string, inst: Instance): TargetStatus {
  const state = inst.State?.Name ?? "pending";
  if (state === "pending") return { key, state: "pending" };
  if (!ENDED.has(state)) return { key, state: "running" };
  const tag = inst.Tags?.find((t) => t.Key === EXIT_CODE_TAG)?.Value;
  const exitCode = tag !== undefined && /^\d+$/.test(tag) ? Number(tag) : null;
  if (exitCode !== null) return { key, state: "exited", exitCode };
  return { key, state: "lost", reason: `instance ${state} without an exit code${inst.StateReason?.Message ? ` (${inst.StateReason.Message})` : ""}` };
}

/** Of several instances with one key (never expected: ClientToken), the live one, else the newest. */
export function preferred(a: Instance, b: Instance): Instance {
  const live = (i: Instance) => !ENDED.has(i.State?.Name ?? "pending");
  if (live(a) !== live(b)) return live(a) ? a : b;
  return (a.LaunchTime?.getTime() ?? 0) >= (b.LaunchTime?.getTime() ?? 0) ? a : b;
}
