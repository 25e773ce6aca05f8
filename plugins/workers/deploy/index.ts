import type { Deployer, DeployLog } from "./deployer";
import { DockerDeployer } from "./docker-deployer";
import { EcsDeployer } from "./ecs-deployer";
import type { DeploySettings } from "./settings";

export type { Deployer, DeployLog } from "./deployer";
export { DeployFailure, messageOf } from "./failure";
export { DEPLOY_SETTING_VARS, readDeployRequest, readDeploySettings, type DeployRequest, type DeploySettings } from "./settings";

/** The deployer the settings name. */
export function createDeployer(settings: DeploySettings, log: DeployLog): Deployer {
  return settings.kind === "ecs" ? new EcsDeployer(settings, log) : new DockerDeployer(settings, log);
}
