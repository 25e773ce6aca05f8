import { launchToken } from "../../plugins/targets/aws-shared/launch-token";
import { instanceStatus } from "../../plugins/targets/ec2/instance-status";
import { isCapacityFailure, taskStatus } from "../../plugins/targets/fargate/task-status";

/** The documented mapping of AWS states to target statuses. */
const task = (lastStatus: string, extra: Record<string, unknown> = {}) => ({ lastStatus, containers: [{ name: "sidecar", exitCode: 9 }, { name: "worker", exitCode: extra.exitCode as number | undefined }], ...extra });

test("ECS tasks: pending, running, exited with the essential container's code, lost when ECS ended them", () => {
  for (const s of ["PROVISIONING", "PENDING", "ACTIVATING"]) expect(taskStatus("k", task(s), "worker")).toEqual({ key: "k", state: "pending" });
  for (const s of ["RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"]) expect(taskStatus("k", task(s), "worker")).toEqual({ key: "k", state: "running" });
  expect(taskStatus("k", task("STOPPED", { stopCode: "EssentialContainerExited", exitCode: 3 }), "worker")).toEqual({ key: "k", state: "exited", exitCode: 3 });
  expect(taskStatus("k", task("STOPPED", { stopCode: "UserInitiated", stoppedReason: "cancelled", exitCode: 143 }), "worker")).toEqual({ key: "k", state: "exited", exitCode: 143, reason: "UserInitiated: cancelled" });
  expect(taskStatus("k", task("STOPPED", { stopCode: "UserInitiated", stoppedReason: "cancelled" }), "worker")).toEqual(expect.objectContaining({ state: "lost" }));
  for (const code of ["TaskFailedToStart", "SpotInterruption", "ServiceSchedulerInitiated", "TerminationNotice"]) {
    expect(taskStatus("k", task("STOPPED", { stopCode: code, exitCode: 0 }), "worker")).toEqual(expect.objectContaining({ state: "lost", reason: expect.any(String) }));
  }
});

test("RunTask failures: capacity and RESOURCE reasons retry, others do not", () => {
  expect(isCapacityFailure({ reason: "RESOURCE:MEMORY" })).toBe(true);
  expect(isCapacityFailure({ reason: "Capacity is unavailable at this time." })).toBe(true);
  expect(isCapacityFailure({ reason: "ATTRIBUTE" })).toBe(false);
  expect(isCapacityFailure({ reason: "MISSING" })).toBe(false);
});

test("EC2 instances: the exit code tag makes an ended instance exited; without it, lost", () => {
  expect(instanceStatus("k", { State: { Name: "pending" } })).toEqual({ key: "k", state: "pending" });
  expect(instanceStatus("k", { State: { Name: "running" }, Tags: [{ Key: "blacktree.exit-code", Value: "0" }] })).toEqual({ key: "k", state: "running" });
  for (const Name of ["shutting-down", "terminated", "stopped"] as const) {
    expect(instanceStatus("k", { State: { Name }, Tags: [{ Key: "blacktree.exit-code", Value: "3" }] })).toEqual({ key: "k", state: "exited", exitCode: 3 });
    expect(instanceStatus("k", { State: { Name } })).toEqual(expect.objectContaining({ state: "lost" }));
  }
});

test("launch tokens: the key when it fits in 64 characters, else its SHA-256 (64 hex characters)", () => {
  expect(launchToken("job_1:1")).toBe("job_1:1");
  const long = `job_${"x".repeat(70)}:1`;
  expect(launchToken(long)).toMatch(/^[0-9a-f]{64}$/);
  expect(launchToken(long)).toBe(launchToken(long));
});
