import fs from "node:fs";
import path from "node:path";
import { registerSecret } from "./log";
import { BuildFailure, EXIT_FAILURE } from "./result";
import { runCommand } from "./run-command";
import type { BuildInputs } from "./dockerfile";
import type { RegistrySettings } from "./settings";

const PROBE_TIMEOUT_MS = 5_000;

/**
 * Buildah is the daemonless builder of the worker image: no Docker socket, no privileged
 * mode. vfs storage (no overlay mount) and chroot isolation (no namespaces to create) are
 * what an unprivileged container (a Fargate task) allows; RUN steps share the container's
 * network. The storage driver is passed on every call, so a host's own config cannot
 * switch it.
 */
const GLOBAL_ARGS = ["--storage-driver", "vfs"];

export async function buildahAvailable(): Promise<boolean> {
  const probe = await runCommand("buildah", ["--version"], { env: process.env, timeoutMs: PROBE_TIMEOUT_MS });
  return !probe.startError && !probe.timedOut && probe.code === 0;
}

/**
 * buildah (as root without CAP_SYS_ADMIN) runs itself in a user namespace; where none may be
 * made — Docker's default seccomp profile, Fargate — it fails with a cryptic "parsing PID".
 * Probed first, so the job fails at once with what to change, and is not retried.
 */
export async function checkUserNamespaces(): Promise<void> {
  const probe = await runCommand("unshare", ["--user", "--map-root-user", "true"], { env: process.env, timeoutMs: PROBE_TIMEOUT_MS });
  if (probe.code === 0) return;
  throw new BuildFailure(
    "this container cannot create a user namespace, which buildah needs (Docker's default seccomp profile and Fargate refuse it): run the worker image with seccomp=unconfined (docker/ec2 target `workerSecurityOpt`) — see the README's worker image section",
    EXIT_FAILURE,
    false,
  );
}

function buildahEnv(): NodeJS.ProcessEnv {
  return { ...process.env, BUILDAH_ISOLATION: "chroot", STORAGE_DRIVER: "vfs" };
}

function failure(what: string, run: Awaited<ReturnType<typeof runCommand>>): BuildFailure {
  // buildah prints its reason last ("error building at STEP …", "Error: …").
  const reason = run.startError?.message ?? [...run.lastLines].reverse().find((l) => /error/i.test(l)) ?? run.lastLines.at(-1) ?? `buildah exited with ${run.code ?? run.signal}`;
  return new BuildFailure(`${what}: ${reason}`, EXIT_FAILURE);
}

/**
 * An auth file for the registry (buildah's `--authfile`), mode 0600, in the build's own work
 * directory: credentials never go on a command line. Both the password and the encoded
 * pair are redacted from the log from now on.
 */
export function writeAuthFile(dir: string, registry: RegistrySettings): string | null {
  if (!registry.username || !registry.password) return null;
  const auth = Buffer.from(`${registry.username}:${registry.password}`).toString("base64");
  registerSecret(registry.password);
  registerSecret(auth);
  const file = path.join(dir, "registry-auth.json");
  fs.writeFileSync(file, JSON.stringify({ auths: { [registry.url]: { auth } } }), { mode: 0o600 });
  return file;
}

export async function buildahBuild(inputs: BuildInputs, localTag: string, opts: { insecure: boolean; authFile: string | null }): Promise<void> {
  const args = [...GLOBAL_ARGS, "bud", "--isolation", "chroot", "--format", "docker", "--layers=false", `--tls-verify=${!opts.insecure}`];
  if (opts.authFile) args.push("--authfile", opts.authFile);
  args.push("-f", inputs.dockerfile, "-t", localTag, inputs.contextDir);
  const run = await runCommand("buildah", args, { env: buildahEnv(), echoAs: "buildah" });
  if (run.code !== 0) throw failure(`buildah build of ${localTag} failed`, run);
}

/** Pushes and returns the manifest digest the registry took (`sha256:…`), as buildah reports it. */
export async function buildahPush(localTag: string, destination: string, opts: { insecure: boolean; authFile: string | null; workDir: string }): Promise<string> {
  const digestFile = path.join(opts.workDir, "push-digest");
  const args = [...GLOBAL_ARGS, "push", "--format", "docker", `--tls-verify=${!opts.insecure}`, "--digestfile", digestFile];
  if (opts.authFile) args.push("--authfile", opts.authFile);
  args.push(localTag, `docker://${destination}`);
  const run = await runCommand("buildah", args, { env: buildahEnv(), echoAs: "buildah" });
  if (run.code !== 0) throw failure(`buildah push to ${destination} failed`, run);
  const digest = fs.existsSync(digestFile) ? fs.readFileSync(digestFile, "utf8").trim() : "";
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new BuildFailure(`buildah pushed ${destination} but reported no digest`, EXIT_FAILURE);
  return digest;
}

/** Frees the local copy (a host's storage would otherwise grow with every build). */
export async function buildahRemove(localTag: string): Promise<void> {
  await runCommand("buildah", [...GLOBAL_ARGS, "rmi", "-f", localTag], { env: buildahEnv(), timeoutMs: 60_000 });
}
