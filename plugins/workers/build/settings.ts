import { badInput } from "./result";

/** Where the image is pushed (from the target's `registry` config); credentials come through the secrets fetch. */
export interface RegistrySettings {
  url: string;
  repositoryPrefix: string;
  insecure: boolean;
  /** Filled in from the secrets fetch when the target has credentials. */
  username?: string;
  password?: string;
}

/** Which builder: `buildah` in the worker image (it sets BLACKTREE_BUILDER); `auto` (a development host) is a Docker engine when one answers, else none. */
export type Builder = "auto" | "docker" | "buildah";

/** The build worker's inputs, all from its environment. */
export interface BuildSettings {
  jobId: string;
  attempt: string;
  repository: string;
  branch: string;
  /** Relative to contextDir. */
  dockerfilePath: string;
  /** Relative to the repository root. */
  contextDir: string;
  imageTag: string;
  /** Fetch the GitHub token through the callback before cloning. */
  needsToken: boolean;
  /** Every secret name this attempt may fetch (one fetch gets them all). */
  secretNames: string[];
  registry: RegistrySettings | null;
  builder: Builder;
  /** `build` (default) or `test` (clone, then run testCommand). */
  action: "build" | "test";
  testCommand: string;
}

export function readBuildSettings(env: NodeJS.ProcessEnv): BuildSettings {
  const required = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) throw badInput(`${name} is not set`);
    return value;
  };
  const action = env.BLACKTREE_ACTION === "test" ? "test" : "build";
  return {
    jobId: env.BLACKTREE_JOB_ID ?? "",
    attempt: env.BLACKTREE_ATTEMPT ?? "",
    repository: required("BLACKTREE_REPOSITORY"),
    branch: env.BLACKTREE_BRANCH?.trim() || "main",
    dockerfilePath: env.BLACKTREE_DOCKERFILE_PATH?.trim() || "Dockerfile",
    contextDir: env.BLACKTREE_CONTEXT_DIR?.trim() || ".",
    imageTag: action === "build" ? required("BLACKTREE_IMAGE_TAG") : "",
    // The dispatcher lists the secrets stored for the job; only their names travel.
    needsToken: (env.BLACKTREE_SECRETS ?? "").split(",").includes("token"),
    secretNames: (env.BLACKTREE_SECRETS ?? "").split(",").map((s) => s.trim()).filter(Boolean),
    registry: env.BLACKTREE_REGISTRY?.trim()
      ? { url: env.BLACKTREE_REGISTRY.trim(), repositoryPrefix: env.BLACKTREE_REGISTRY_PREFIX?.trim() ?? "", insecure: env.BLACKTREE_REGISTRY_INSECURE === "true" }
      : null,
    builder: env.BLACKTREE_BUILDER === "docker" || env.BLACKTREE_BUILDER === "buildah" ? env.BLACKTREE_BUILDER : "auto",
    action,
    testCommand: env.BLACKTREE_TEST_COMMAND ?? "",
  };
}
