import type { IncomingMessage } from "node:http";
import type { ApiKeys, Caller } from "./api-keys";

type Req = IncomingMessage & { $caller?: Caller | null };

/** The API key of a request: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(req: IncomingMessage): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === "string" && /^Bearer /i.test(auth)) return auth.slice(7).trim() || null;
  const header = req.headers["x-api-key"];
  return typeof header === "string" && header.trim() ? header.trim() : null;
}

/** The caller of a request, verified once and remembered on it (the rate limiter asks first). */
export function callerOf(req: Req, keys: ApiKeys): Caller | null {
  if (req.$caller === undefined) {
    const key = presentedKey(req);
    req.$caller = key ? keys.verify(key) : null;
  }
  return req.$caller;
}
