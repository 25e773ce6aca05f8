import { DEPLOY_SETTING_VARS } from "../../workers/deploy/settings";

/**
 * The deployer settings the operator set in the orchestrator's environment, handed to the
 * deploy/stop worker as they are (the worker checks them: plugins/workers/deploy/settings.ts).
 * Only these named, non-secret variables: never the rest of the orchestrator's environment.
 */
export function deployerEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of DEPLOY_SETTING_VARS) {
    const value = env[name];
    if (value !== undefined && value !== "") out[name] = value;
  }
  return out;
}
