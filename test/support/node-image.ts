import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./orchestrator";

const REPOSITORY = "local/blacktree-node-worker";

/** The shared libraries a binary loads, as `ldd` lists them (absolute paths). */
function libraries(binary: string): string[] {
  return execFileSync("ldd", [binary], { encoding: "utf8" })
    .split("\n")
    .map((l) => /(\/\S+) \(0x/.exec(l)?.[1])
    .filter((p): p is string => !!p);
}

function copyInto(root: string, from: string, to = from): void {
  const dest = path.join(root, to);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(fs.realpathSync(from), dest);
  fs.chmodSync(dest, fs.statSync(from).mode);
}

/** The files the SDK package ships (`files` of its package.json, plus the manifest). */
function sdkFiles(): string[] {
  const dir = path.join(ROOT, "packages/sdk");
  const walk = (p: string): string[] => (fs.statSync(p).isDirectory() ? fs.readdirSync(p).flatMap((e) => walk(path.join(p, e))) : [p]);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  return ["package.json", ...pkg.files].flatMap((f: string) => (fs.existsSync(path.join(dir, f)) ? walk(path.join(dir, f)) : []));
}

/**
 * An offline image with this machine's Node (and the libraries it loads), busybox's sh, the
 * SDK package installed at /app/node_modules/@blacktree/sdk and `worker` as /app/worker.js:
 * a worker in a container, built without a registry (`docker import`). Cached by content;
 * older builds of it are removed.
 */
export function nodeWorkerImage(worker: string): string {
  const node = fs.realpathSync(process.execPath);
  const files = sdkFiles();
  const hash = createHash("sha256").update(worker).update(`${node}:${fs.statSync(node).size}`);
  for (const f of files) hash.update(f).update(fs.readFileSync(f));
  const tag = `${REPOSITORY}:${hash.digest("hex").slice(0, 12)}`;
  const existing = execFileSync("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY], { encoding: "utf8" }).split("\n").filter(Boolean);
  if (existing.includes(tag)) return tag;
  for (const old of existing) execFileSync("docker", ["rmi", "-f", old], { stdio: "ignore" });

  const root = fs.mkdtempSync(path.join(os.tmpdir(), "blacktree-node-image-"));
  try {
    copyInto(root, node, "usr/local/bin/node");
    for (const lib of libraries(node)) copyInto(root, lib);
    copyInto(root, execFileSync("sh", ["-c", "command -v busybox"], { encoding: "utf8" }).trim(), "bin/busybox");
    fs.symlinkSync("busybox", path.join(root, "bin/sh"));
    fs.mkdirSync(path.join(root, "tmp"), { mode: 0o1777 });
    const sdk = path.join(ROOT, "packages/sdk");
    for (const f of files) copyInto(root, f, path.join("app/node_modules/@blacktree/sdk", path.relative(sdk, f)));
    fs.writeFileSync(path.join(root, "app/worker.js"), worker);
    execFileSync("bash", ["-c", `tar -C "$1" -c . | docker import -c 'ENV PATH=/usr/local/bin:/bin' -c 'WORKDIR /app' - "$2" >/dev/null`, "import", root, tag], { stdio: "pipe", timeout: 120_000 });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return tag;
}
