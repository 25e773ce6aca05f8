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
      return JSON.stringify({ ...rest, token: "[redacted]" });
    }
    return text;
  } catch {
    return text.replace(TOKEN_IN_TEXT, '$1"[redacted]"');
  }
}
