import { createHmac, timingSafeEqual } from "node:crypto";
import type { Caller } from "./api-keys";
import type { Role } from "./roles";

/** How long a stream token may be used to open a stream (a stream once open stays open). */
export const STREAM_TOKEN_TTL_MS = 60_000;

/** What a stream token opens: one job's streams (events and logs), or the operator event stream. */
export type StreamScope = { kind: "job"; jobId: string } | { kind: "events" };

export interface StreamGrant {
  scope: StreamScope;
  /** The API key name and role the token was issued to (tenancy is checked again on use). */
  caller: Caller;
  /** Expiry, epoch ms. */
  exp: number;
}

interface Claims {
  v: 1;
  s: "job" | "events";
  j?: string;
  n: string;
  r: Role;
  e: number;
}

/**
 * Short-lived, scoped tokens for the stream routes only (a browser's EventSource cannot set
 * headers, and an API key must never travel in a URL). Signed with HMAC-SHA256 under a key
 * derived from the callback secret with a label of its own, so a stream token is never a
 * worker token and the reverse; any gateway node with the same secret checks them statelessly.
 */
export class StreamTokens {
  private readonly key: Buffer;

  constructor(secret: Buffer) {
    this.key = createHmac("sha256", secret).update("blacktree.stream-token.v1").digest();
  }

  issue(scope: StreamScope, caller: Caller, now = Date.now(), ttlMs = STREAM_TOKEN_TTL_MS): { token: string; expiresAt: number } {
    const claims: Claims = { v: 1, s: scope.kind, ...(scope.kind === "job" ? { j: scope.jobId } : {}), n: caller.name, r: caller.role, e: now + ttlMs };
    const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
    return { token: `bts.${payload}.${this.sign(payload)}`, expiresAt: claims.e };
  }

  /** The grant of a valid, unexpired token; null for anything else. */
  verify(token: string, now = Date.now()): StreamGrant | null {
    const [prefix, payload, sig, extra] = token.split(".");
    if (prefix !== "bts" || !payload || !sig || extra !== undefined) return null;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(sig);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
    try {
      const c = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Claims;
      if (c.v !== 1 || typeof c.n !== "string" || typeof c.r !== "string" || typeof c.e !== "number" || c.e < now) return null;
      if (c.s === "job" && typeof c.j === "string") return { scope: { kind: "job", jobId: c.j }, caller: { name: c.n, role: c.r }, exp: c.e };
      if (c.s === "events") return { scope: { kind: "events" }, caller: { name: c.n, role: c.r }, exp: c.e };
      return null;
    } catch {
      return null;
    }
  }

  private sign(payload: string): string {
    return createHmac("sha256", this.key).update(payload).digest("base64url");
  }
}

/** A URL with any `token` query value replaced, for logs: a stream token is a credential. */
export function redactTokenInUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, "$1[redacted]");
}
