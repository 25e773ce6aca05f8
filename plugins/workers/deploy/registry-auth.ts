import type { WorkerClient } from "@blacktree/sdk/worker";
import { DeployFailure, messageOf } from "./failure";

/** What Docker's pull takes as `authconfig`. */
export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

/** The secret names a container target adds to BLACKTREE_SECRETS when its registry has credentials. */
const USERNAME = "registryUsername";
const PASSWORD = "registryPassword";

/**
 * The target's registry credentials, for pulling an image of that registry: fetched once
 * through the worker's one-time secrets fetch (never in env or logs; the client redacts
 * them). Null when the image is from another registry or the target has no credentials.
 */
export function registryAuthFrom(env: Record<string, string | undefined>, worker: WorkerClient): (image: string) => Promise<RegistryAuth | null> {
  const registry = env.BLACKTREE_REGISTRY;
  const offered = (env.BLACKTREE_SECRETS ?? "").split(",");
  let fetched: Promise<RegistryAuth> | null = null;
  return async (image) => {
    if (!registry || image.split("/")[0] !== registry || !offered.includes(USERNAME) || !offered.includes(PASSWORD) || !worker.connected) return null;
    fetched ??= worker.secrets().then(
      (secrets) => {
        if (!secrets[USERNAME] || !secrets[PASSWORD]) throw new DeployFailure("the secrets answer holds no registry credentials");
        return { username: secrets[USERNAME], password: secrets[PASSWORD], serveraddress: registry };
      },
      (err) => {
        throw new DeployFailure(`could not fetch the registry credentials: ${messageOf(err)}`);
      },
    );
    return fetched;
  };
}
