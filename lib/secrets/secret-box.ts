import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { blacktreeError } from "../errors";
import type { Mode } from "../config/env";

const VERSION = "v1";
const KEY_BYTES = 32;
const IV_BYTES = 12;
export const SECRETS_KEY_FILE = "secrets.key";

/**
 * AES-256-GCM for secrets at rest (the job `token`). A sealed value is
 * `v1:<iv>:<tag>:<ciphertext>` (base64url); the job id and secret name are bound as
 * associated data, so a sealed value copied to another row does not open. Previous keys
 * only decrypt: they let a key rotation finish without losing queued jobs' tokens.
 */
export class SecretBox {
  private readonly keys: Buffer[];

  constructor(current: Buffer, previous: Buffer[] = []) {
    for (const k of [current, ...previous]) if (k.length !== KEY_BYTES) throw blacktreeError("CONFIG_INVALID", `A secrets key must be ${KEY_BYTES} bytes`);
    this.keys = [current, ...previous];
  }

  seal(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.keys[0], iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const ct = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return [VERSION, iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), ct.toString("base64url")].join(":");
  }

  open(sealed: string, context: string): string {
    const [version, iv, tag, ct, extra] = sealed.split(":");
    if (version !== VERSION || !iv || !tag || ct === undefined || extra !== undefined) throw blacktreeError("INTERNAL", "A stored secret is not sealed by this build");
    for (const key of this.keys) {
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
        decipher.setAAD(Buffer.from(context, "utf8"));
        decipher.setAuthTag(Buffer.from(tag, "base64url"));
        return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]).toString("utf8");
      } catch {
        // try the next (previous) key
      }
    }
    throw blacktreeError("INTERNAL", "A stored secret does not open with the configured secrets keys (BLACKTREE_SECRETS_KEY / BLACKTREE_SECRETS_KEY_PREVIOUS)");
  }
}

/** 32 bytes as base64 or hex; anything else is refused with the variable named. */
export function parseSecretsKey(value: string, variable: string): Buffer {
  const v = value.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(v) ? Buffer.from(v, "hex") : Buffer.from(v, "base64");
  if (key.length !== KEY_BYTES) {
    throw blacktreeError("CONFIG_INVALID", `${variable} must be ${KEY_BYTES} bytes, base64 or hex (e.g. \`openssl rand -base64 32\`)`, { fields: [{ field: variable, message: `must be ${KEY_BYTES} bytes, base64 or hex` }] });
  }
  return key;
}

/**
 * The configured key; in development one generated once into DATA_DIR (mode 0600).
 * Production refuses to start without BLACKTREE_SECRETS_KEY.
 */
export function loadSecretBox(opts: { key: string | null; previous: string[]; dataDir: string; mode: Mode }): SecretBox {
  const previous = opts.previous.map((k) => parseSecretsKey(k, "BLACKTREE_SECRETS_KEY_PREVIOUS"));
  if (opts.key) return new SecretBox(parseSecretsKey(opts.key, "BLACKTREE_SECRETS_KEY"), previous);
  if (opts.mode === "production") {
    throw blacktreeError("CONFIG_INVALID", "BLACKTREE_SECRETS_KEY is required in production mode (32 bytes, base64 or hex: `openssl rand -base64 32`)", {
      fields: [{ field: "BLACKTREE_SECRETS_KEY", message: "is required in production mode" }],
    });
  }
  const file = path.join(opts.dataDir, SECRETS_KEY_FILE);
  fs.mkdirSync(opts.dataDir, { recursive: true });
  let text: string | null = null;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    // Only a missing file is generated: any other read error stops start-up, naming the file.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw blacktreeError("CONFIG_INVALID", `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}: ${(err as Error).message})`, { fields: [{ field: file, message: "cannot be read" }] });
    }
  }
  if (text !== null) return new SecretBox(parseSecretsKey(text, file), previous);
  const key = randomBytes(KEY_BYTES);
  try {
    fs.writeFileSync(file, key.toString("base64"), { mode: 0o600, flag: "wx" });
  } catch (raced) {
    // Another process of this data directory wrote it first: use theirs.
    if ((raced as NodeJS.ErrnoException).code === "EEXIST") return new SecretBox(parseSecretsKey(fs.readFileSync(file, "utf8"), file), previous);
    throw raced;
  }
  return new SecretBox(key, previous);
}
