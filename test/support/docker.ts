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

/** Whether a Docker engine answers here (tests that built nothing need no engine). */
function engineAnswers(): boolean {
  try {
    execFileSync("docker", ["version", "--format", "{{.Server.Version}}"], { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the images the reference build worker tagged for these jobs (`blacktree/…`, read
 * from each job's result): a test cleans up the images it made, and only those.
 */
export function removeBuiltImages(imageUrls: Array<string | null | undefined>): void {
  const tags = [...new Set(imageUrls.filter((u): u is string => typeof u === "string" && /^blacktree\/[a-z0-9._\/-]+:[A-Za-z0-9._-]+$/.test(u)))];
  if (tags.length === 0 || !engineAnswers()) return;
  for (const tag of tags) {
    try {
      execFileSync("docker", ["image", "rm", "-f", tag], { stdio: "ignore", timeout: 60_000 });
    } catch {
      // never built (no engine at build time) or already gone
    }
  }
}
