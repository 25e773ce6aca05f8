import { execFileSync } from "node:child_process";
import { ensureTestImage, TEST_IMAGE } from "./docker";

/**
 * A tiny application image for deploy tests, made offline from the busybox test image with
 * `docker commit --change CMD …`: `script` runs under `sh -c`, with PORT set by the deployer.
 */
export function appImage(tag: string, script: string): string {
  ensureTestImage();
  const id = execFileSync("docker", ["create", TEST_IMAGE, "true"], { encoding: "utf8" }).trim();
  try {
    execFileSync("docker", ["commit", "--change", `CMD ${JSON.stringify(["sh", "-c", script])}`, id, tag], { stdio: "pipe", timeout: 60_000 });
  } finally {
    execFileSync("docker", ["rm", "-f", id], { stdio: "ignore" });
  }
  return tag;
}

/** An app that answers HTTP on $PORT with `body`. */
export function httpAppImage(tag: string, body: string): string {
  return appImage(tag, `mkdir -p /www && echo ${body} > /www/index.html && exec httpd -f -p "$PORT" -h /www`);
}

export function removeImages(tags: string[]): void {
  for (const tag of tags) execFileSync("docker", ["image", "rm", "-f", tag], { stdio: "ignore" });
}
