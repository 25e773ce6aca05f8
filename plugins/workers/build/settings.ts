import { badInput } from "./result";

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
    action,
    testCommand: env.BLACKTREE_TEST_COMMAND ?? "",
  };
}
