import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { blacktreeError } from "../errors";

/** Shortest secret accepted from the environment (HMAC keys: the callback secret, the API key pepper). */
export const MIN_SECRET_CHARS = 32;

/** An env-supplied HMAC key: at least MIN_SECRET_CHARS characters, or a start-up error naming the variable. */
export function secretFromEnv(value: string, variable: string): Buffer {
  if (value.length < MIN_SECRET_CHARS) {
    throw blacktreeError("CONFIG_INVALID", `${variable} must be at least ${MIN_SECRET_CHARS} characters (e.g. \`openssl rand -base64 32\`)`, { fields: [{ field: variable, message: `must be at least ${MIN_SECRET_CHARS} characters` }] });
  }
  return Buffer.from(value, "utf8");
}

/**
 * A secret the orchestrator generates once into the data directory (32 random bytes as 64
 * hex digits, mode 0600). Only a missing file is generated; any other read error, and a file
 * that is empty or not 64 hex digits, is a start-up error naming the file — never silently
 * replaced, never used as it is. Two processes generating at once use the file written first.
 */
export function loadGeneratedSecret(dataDir: string, name: string): Buffer {
  const file = path.join(dataDir, name);
  fs.mkdirSync(dataDir, { recursive: true });
  const existing = readSecretFile(file);
  if (existing) return existing;
  const secret = randomBytes(32);
  try {
    fs.writeFileSync(file, secret.toString("hex"), { mode: 0o600, flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return readSecretFile(file) ?? unreadable(file, "it vanished while being read");
    throw unreadable(file, (err as Error).message);
  }
  return secret;
}

/** A generated secret that already exists (null when its file does not), checked as at start-up. */
export function readGeneratedSecret(dataDir: string, name: string): Buffer | null {
  return readSecretFile(path.join(dataDir, name));
}

/** The file's secret, or null when the file does not exist. */
function readSecretFile(file: string): Buffer | null {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw unreadable(file, `${(err as NodeJS.ErrnoException).code ?? "error"}: ${(err as Error).message}`);
  }
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw unreadable(file, hex === "" ? "it is empty" : "it is not 64 hex digits");
  return Buffer.from(hex, "hex");
}

function unreadable(file: string, why: string): never {
  throw blacktreeError("CONFIG_INVALID", `${file} cannot be used (${why}): fix it, or delete it to have a new one generated`, { file, fields: [{ field: file, message: why }] });
}
