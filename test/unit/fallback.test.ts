import { fallbackKey, nextFallbackTarget } from "../../lib/jobs/fallback";

const routing = { fallback: { fargate: ["ec2", "process"] } };

test("the next target follows the job's routed target's fallback list, in order, and ends", () => {
  expect(nextFallbackTarget(routing, "fargate", "fargate")).toBe("ec2");
  expect(nextFallbackTarget(routing, "fargate", "ec2")).toBe("process");
  expect(nextFallbackTarget(routing, "fargate", "process")).toBeNull();
  expect(nextFallbackTarget(routing, "docker", "docker")).toBeNull();
  expect(nextFallbackTarget(routing, null, "fargate")).toBe("ec2");
});

test("a fallback key names its target: never the first target's key", () => {
  expect(fallbackKey("job_1", 2, "ec2")).toBe("job_1:2@ec2");
});
