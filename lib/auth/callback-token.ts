import { createHmac, timingSafeEqual } from "node:crypto";
import { loadGeneratedSecret, secretFromEnv } from "./secret-file";

export interface CallbackClaims {
  jobId: string;
  attempt: number;
  /** The launch key the token was issued for: a fallback launch (`<jobId>:<attempt>@<target>`) gets a token of its own. */
  key: string;
  /** Expiry, epoch seconds. */
  exp: number;
}

/**
 * Worker callback tokens: scoped to one launch of a job attempt (its launch key) and expiring
 * with it, signed with HMAC-SHA256 so any gateway node with the same secret can check them
 * statelessly. The engine accepts a token only while its key is the attempt's current key.
 */
export class CallbackTokens {
  constructor(private readonly secret: Buffer) {}

  issue(jobId: string, attempt: number, key: string, ttlMs: number, now = Date.now()): string {
    const claims: CallbackClaims = { jobId, attempt, key, exp: Math.ceil((now + ttlMs) / 1000) };
    const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
    return `${payload}.${this.sign(payload)}`;
  }

  /** The claims of a valid, unexpired token; null for anything else. */
  verify(token: string, now = Date.now()): CallbackClaims | null {
    const [payload, sig, extra] = token.split(".");
    if (!payload || !sig || extra !== undefined) return null;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(sig);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
    try {
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as CallbackClaims;
      if (typeof claims.jobId !== "string" || !Number.isInteger(claims.attempt) || typeof claims.key !== "string" || typeof claims.exp !== "number") return null;
      return claims.exp * 1000 >= now ? claims : null;
    } catch {
      return null;
    }
  }

  private sign(payload: string): string {
    return createHmac("sha256", this.secret).update(payload).digest("base64url");
  }
}

/** The configured secret (32+ characters), or one generated once into the data directory (mode 0600). */
export function loadCallbackSecret(configured: string | null, dataDir: string): Buffer {
  if (configured) return secretFromEnv(configured, "BLACKTREE_CALLBACK_SECRET");
  return loadGeneratedSecret(dataDir, "callback.secret");
}
