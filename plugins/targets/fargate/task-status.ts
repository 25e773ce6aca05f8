import type { Failure, Task } from "@aws-sdk/client-ecs";
import type { TargetStatus } from "@blacktree/sdk";

const PENDING = new Set(["PROVISIONING", "PENDING", "ACTIVATING"]);
/** Stop codes where ECS (not the worker) ended the task: the worker's work is lost, whatever its exit code. */
const TAKEN_AWAY = new Set(["SpotInterruption", "ServiceSchedulerInitiated", "TerminationNotice"]);

/**
 * An ECS task as a target status:
 * - PROVISIONING, PENDING, ACTIVATING → pending;
 * - RUNNING, and DEACTIVATING/STOPPING/DEPROVISIONING (the container may still run) → running;
 * - STOPPED with EssentialContainerExited, or UserInitiated with an exit code → exited{exitCode of the essential container};
 * - STOPPED with TaskFailedToStart → lost ("failed to start: …", e.g. an image pull error);
 * - STOPPED with SpotInterruption, ServiceSchedulerInitiated, TerminationNotice → lost (ECS took the task away);
 * - STOPPED without an exit code (stopped before it ran) → lost.
 */
export function taskStatus(key: string, task: Task, containerName: string): TargetStatus {
  const last = task.lastStatus ?? "PROVISIONING";
  if (PENDING.has(last)) return { key, state: "pending" };
  if (last !== "STOPPED") return { key, state: "running" };
  const code = task.stopCode ?? "";
  const why = task.stoppedReason ?? code ?? "stopped";
  const container = task.containers?.find((c) => c.name === containerName) ?? task.containers?.[0];
  if (code === "TaskFailedToStart") return { key, state: "lost", reason: `task failed to start: ${container?.reason ?? why}` };
  if (TAKEN_AWAY.has(code)) return { key, state: "lost", reason: `task stopped by ECS (${code}): ${why}` };
  const exitCode = container?.exitCode;
  if (typeof exitCode === "number") return code === "EssentialContainerExited" ? { key, state: "exited", exitCode } : { key, state: "exited", exitCode, reason: `${code || "stopped"}: ${why}` };
  return { key, state: "lost", reason: `task stopped without an exit code (${code || "no stop code"}): ${why}` };
}

/** DescribeTasks `failures[]`: MISSING (aged out, or never there) and anything else both mean the task is not to be found. */
export function failureStatus(key: string, failure: Failure): TargetStatus {
  return { key, state: "lost", reason: failure.reason === "MISSING" ? "ECS does not know this task (MISSING)" : `ECS: ${failure.reason ?? "unknown failure"}${failure.detail ? ` (${failure.detail})` : ""}` };
}

/** RunTask `failures[]` on a 200: capacity and RESOURCE:* reasons are worth retrying (elsewhere); the rest are configuration problems. */
export function isCapacityFailure(failure: Failure): boolean {
  const reason = failure.reason ?? "";
  return reason.startsWith("RESOURCE:") || /capacity/i.test(reason) || reason === "AGENT";
}
