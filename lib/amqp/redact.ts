/** `amqp://user:secret@host/vhost` → `amqp://user:***@host/vhost`: URLs are logged, passwords never. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
  }
}

export const REDACTED = "[redacted]";

const TOKEN_IN_TEXT = /("token"\s*:\s*)"(?:[^"\\]|\\.)*"/g;

/**
 * A message body fit to keep or forward: the `token` field removed when the body is a
 * JSON object, and any `"token": "…"` pair blanked in text that does not parse.
 */
export function redactBody(text: string): string {
  try {
    const value = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value) && "token" in value) {
      const { token: _token, ...rest } = value as Record<string, unknown>;
      return JSON.stringify({ ...rest, token: REDACTED });
    }
    return text;
  } catch {
    return text.replace(TOKEN_IN_TEXT, '$1"[redacted]"');
  }
}

/** A stored dead letter's body for replay: the placeholder of a redacted token is dropped, not sent as a token. */
export function replayBody(text: string): string {
  try {
    const value = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value) && value.token === REDACTED) {
      const { token: _token, ...rest } = value as Record<string, unknown>;
      return JSON.stringify(rest);
    }
  } catch {
    /* not JSON: replayed as stored */
  }
  return text;
}
