import type { Deployer, DeployLog } from "./deployer";
import { DockerDeployer } from "./docker-deployer";
import { EcsDeployer } from "./ecs-deployer";
import type { RegistryAuth } from "./registry-auth";
import type { DeploySettings } from "./settings";

export type { Deployer, DeployLog } from "./deployer";
export { DeployFailure, messageOf } from "./failure";
export { registryAuthFrom, type RegistryAuth } from "./registry-auth";
export { DEPLOY_SETTING_VARS, readDeployRequest, readDeploySettings, type DeployRequest, type DeploySettings } from "./settings";

/** The deployer the settings name; `pullAuth` gives the Docker deployer the target registry's credentials (ECS pulls with its execution role). */
export function createDeployer(settings: DeploySettings, log: DeployLog, pullAuth?: (image: string) => Promise<RegistryAuth | null>): Deployer {
  return settings.kind === "ecs" ? new EcsDeployer(settings, log) : new DockerDeployer(settings, log, pullAuth);
}
