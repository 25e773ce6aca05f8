import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import { basicRegistrySecrets, blacktreeError, REGISTRY_SECRET_NAMES, type RegistryConfig } from "@blacktree/sdk";
import { awsMessage, isTransient } from "./aws-errors";

/**
 * The registry credentials a build worker gets with its one-time secrets fetch. For ECR,
 * a token from GetAuthorizationToken, fetched at that moment with the target's own AWS
 * credentials (the worker's task role needs no ECR login rights of its own beyond the
 * push): it goes to the worker's fetch answer only — never into RunTask overrides, user
 * data, a log line or the store. Other registries: the configured basic credentials.
 */
export class RegistryCredentials {
  private ecr: ECRClient | null = null;

  constructor(
    private readonly registry: RegistryConfig | null,
    private readonly client: { region?: string; endpoint?: string; maxAttempts?: number },
  ) {}

  async workerSecrets(): Promise<Record<string, string>> {
    if (!this.registry) return {};
    if (!this.registry.ecr) return basicRegistrySecrets(this.registry) ?? {};
    this.ecr ??= new ECRClient({
      ...(this.client.region ? { region: this.client.region } : {}),
      ...(this.client.endpoint ? { endpoint: this.client.endpoint } : {}),
      maxAttempts: this.client.maxAttempts ?? 3,
      retryMode: "standard",
    });
    let token: string | undefined;
    try {
      const out = await this.ecr.send(new GetAuthorizationTokenCommand({}));
      token = out.authorizationData?.[0]?.authorizationToken;
    } catch (err) {
      // awsMessage names the error only; no token has been seen yet.
      throw blacktreeError("DEPENDENCY_UNAVAILABLE", `ECR GetAuthorizationToken failed: ${awsMessage(err)}`, undefined, { retryable: isTransient(err) });
    }
    const decoded = token ? Buffer.from(token, "base64").toString("utf8") : "";
    const colon = decoded.indexOf(":");
    if (colon <= 0) throw blacktreeError("DEPENDENCY_UNAVAILABLE", "ECR GetAuthorizationToken answered without a usable token", undefined, { retryable: true });
    return { [REGISTRY_SECRET_NAMES.username]: decoded.slice(0, colon), [REGISTRY_SECRET_NAMES.password]: decoded.slice(colon + 1) };
  }

  close(): void {
    this.ecr?.destroy();
  }
}
