import { randomBytes } from "node:crypto";

/** One token the emulator handed out: what a test looks for in places it must never be. */
export interface IssuedEcrToken {
  /** base64 of `AWS:<password>`, as GetAuthorizationToken returns it. */
  authorizationToken: string;
  password: string;
  proxyEndpoint: string;
  at: number;
}

/** ECR as far as the targets use it: GetAuthorizationToken, a fresh random password each call. */
export class EcrEmulator {
  readonly issued: IssuedEcrToken[] = [];
  readonly registryHost = "000000000000.dkr.ecr.us-east-1.amazonaws.com";

  handle(action: string): unknown {
    if (action !== "GetAuthorizationToken") throw Object.assign(new Error(`The emulator does not implement ${action}`), { code: "InvalidParameterException" });
    const password = `ecr-emulated-${randomBytes(24).toString("hex")}`;
    const token: IssuedEcrToken = { authorizationToken: Buffer.from(`AWS:${password}`).toString("base64"), password, proxyEndpoint: `https://${this.registryHost}`, at: Date.now() };
    this.issued.push(token);
    // expiresAt is epoch seconds in the JSON protocol.
    return { authorizationData: [{ authorizationToken: token.authorizationToken, expiresAt: Math.floor(Date.now() / 1000) + 12 * 3600, proxyEndpoint: token.proxyEndpoint }] };
  }
}
