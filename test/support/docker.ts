import { execFileSync } from "node:child_process";
import path from "node:path";

/** The offline test image (test/support/docker-image.sh builds it from busybox-static). */
export const TEST_IMAGE = "local/busybox:1";

/** Makes sure the engine answers and the test image exists (idempotent; .ci/run does the same). */
export function ensureTestImage(): void {
  try {
    execFileSync("bash", [path.join(__dirname, "docker-image.sh"), TEST_IMAGE], { stdio: "pipe", timeout: 120_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim();
    throw new Error(`the docker tests need a Docker engine and ${TEST_IMAGE}: run (as root) bash test/support/docker-engine.sh, or .ci/run. ${stderr}`);
  }
}

/** Container ids carrying a label (`name=value`), running or not, counted by the docker CLI (outside the target). */
export function containersWithLabel(label: string, opts: { all?: boolean } = { all: true }): string[] {
  const args = ["ps", "-q", "--no-trunc", "--filter", `label=${label}`];
  if (opts.all) args.splice(1, 0, "-a");
  return execFileSync("docker", args, { encoding: "utf8" }).split("\n").filter(Boolean);
}

/** Removes every container carrying the label (test cleanup). */
export function removeContainersWithLabel(label: string): void {
  const ids = containersWithLabel(label);
  if (ids.length) execFileSync("docker", ["rm", "-f", ...ids], { stdio: "ignore" });
}
