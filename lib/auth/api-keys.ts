import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { blacktreeError } from "../errors";
import type { Mode } from "../config/env";
import { isRole, Role } from "./roles";
import { loadGeneratedSecret, readGeneratedSecret, secretFromEnv } from "./secret-file";

export interface Caller {
  /** The key's name: recorded as a job's `submittedBy`. */
  name: string;
  role: Role;
}

interface StoredKey extends Caller {
  hash: Buffer;
}

export const PEPPER_FILE = "api-keys.pepper";
export const KEYS_FILE = "api-keys";
export const ADMIN_KEY_FILE = "admin.key";
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MIN_KEY_LENGTH = 16;

/**
 * Gateway API keys, held only as HMAC-SHA256(pepper, key): a leaked keys file or heap
 * dump gives no usable key without the per-install pepper. Every stored hash is compared
 * in constant time, so timing tells nothing about which key came close.
 */
export class ApiKeys {
  private readonly keys: StoredKey[] = [];

  constructor(private readonly pepper: Buffer) {}

  get size(): number {
    return this.keys.length;
  }

  hash(key: string): Buffer {
    return createHmac("sha256", this.pepper).update(key, "utf8").digest();
  }

  add(name: string, role: Role, hash: Buffer): void {
    if (this.keys.some((k) => k.name === name)) throw keysInvalid(`API key name '${name}' is used twice`);
    this.keys.push({ name, role, hash });
  }

  /** The caller a presented key belongs to, or null. */
  verify(presented: string): Caller | null {
    if (!presented || presented.length > 512) return null;
    const hash = this.hash(presented);
    let found: Caller | null = null;
    for (const k of this.keys) if (timingSafeEqual(k.hash, hash) && !found) found = { name: k.name, role: k.role };
    return found;
  }
}

/** Marks a BLACKTREE_API_KEYS entry that carries the key's hash instead of the key (`blacktree keys hash` prints it). */
export const HASHED_ENTRY_MARK = "hmac";

/**
 * `name:role:key,…` (BLACKTREE_API_KEYS): plain keys, hashed as they are read, or
 * `name:role:hmac:<64 hex>` entries holding a hash made with this install's pepper, so the
 * environment need not hold the key itself.
 */
export function addKeysFromSpec(keys: ApiKeys, spec: string): void {
  for (const entry of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const parts = entry.split(":");
    const [name, role, key] = parts;
    if (parts.length === 4 && key === HASHED_ENTRY_MARK) {
      if (!/^[0-9a-f]{64}$/.test(parts[3])) throw keysInvalid(`API key '${name}': a hashed entry is name:role:${HASHED_ENTRY_MARK}:<64 hex digits>`);
      checkNameAndRole(name, role);
      keys.add(name!, role as Role, Buffer.from(parts[3], "hex"));
      continue;
    }
    if (parts.length !== 3 || !name || !role || !key) throw keysInvalid(`entries must be name:role:key (or name:role:${HASHED_ENTRY_MARK}:<hash>)`);
    checkNameAndRole(name, role);
    checkKey(name, key);
    keys.add(name, role as Role, keys.hash(key));
  }
}

/**
 * The BLACKTREE_API_KEYS entry for a key, hashed with `pepper`; its hash part is also what a
 * `DATA_DIR/api-keys` line (`name:role:<hex>`) holds. Checks the entry as a node would.
 */
export function hashedKeyEntry(pepper: Buffer, name: string, role: string, key: string): string {
  checkNameAndRole(name, role);
  checkKey(name, key);
  return `${name}:${role}:${HASHED_ENTRY_MARK}:${new ApiKeys(pepper).hash(key).toString("hex")}`;
}

/** A new random API key (as the development admin key is made). */
export function generateApiKey(): string {
  return `bt_${randomBytes(24).toString("base64url")}`;
}

function checkNameAndRole(name: string | undefined, role: string | undefined): asserts role is Role {
  if (!name || !NAME.test(name)) throw keysInvalid(`API key name '${name ?? ""}' must be 1-64 letters, digits or . _ -`);
  if (!role || !isRole(role)) throw keysInvalid(`API key '${name}' has role '${role}': must be submitter, operator or admin`);
}

function checkKey(name: string, key: string): void {
  if (key.length < MIN_KEY_LENGTH) throw keysInvalid(`API key '${name}' must be at least ${MIN_KEY_LENGTH} characters`);
}

/** The keys file: one `name:role:<hex hmac>` a line (hashes only, never keys). */
function addKeysFromFile(keys: ApiKeys, file: string): void {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  for (const line of text.split("\n").map((l) => l.trim())) {
    if (!line || line.startsWith("#")) continue;
    const [name, role, hex] = line.split(":");
    if (!name || !role || !isRole(role) || !/^[0-9a-f]{64}$/.test(hex ?? "")) throw keysInvalid(`${file}: lines must be name:role:<64 hex digits>`, file);
    keys.add(name, role, Buffer.from(hex, "hex"));
  }
}

export interface LoadedApiKeys {
  keys: ApiKeys;
  /** Set when this start generated the development admin key (the file that holds it). */
  generatedAdminKeyFile: string | null;
}

/**
 * BLACKTREE_API_KEYS and the keys file. With neither, development generates one admin
 * key (DATA_DIR/admin.key, mode 0600; its hash goes to the keys file) and production
 * refuses to start.
 */
export function loadApiKeys(opts: { spec: string | null; file: string; pepper: string | null; dataDir: string; mode: Mode }): LoadedApiKeys {
  const keys = new ApiKeys(loadPepper(opts.pepper, opts.dataDir));
  if (opts.spec) addKeysFromSpec(keys, opts.spec);
  addKeysFromFile(keys, opts.file);
  if (keys.size > 0) return { keys, generatedAdminKeyFile: null };
  if (opts.mode === "production") {
    throw blacktreeError("CONFIG_INVALID", "BLACKTREE_API_KEYS is required in production mode (name:role:key,…; roles submitter, operator, admin)", {
      fields: [{ field: "BLACKTREE_API_KEYS", message: "is required in production mode" }],
    });
  }
  const key = generateApiKey();
  const keyFile = path.join(opts.dataDir, ADMIN_KEY_FILE);
  fs.writeFileSync(keyFile, key + "\n", { mode: 0o600 });
  fs.mkdirSync(path.dirname(opts.file), { recursive: true });
  fs.appendFileSync(opts.file, `admin:admin:${keys.hash(key).toString("hex")}\n`, { mode: 0o600 });
  keys.add("admin", "admin", keys.hash(key));
  return { keys, generatedAdminKeyFile: keyFile };
}

function loadPepper(configured: string | null, dataDir: string): Buffer {
  if (configured) return secretFromEnv(configured, "BLACKTREE_API_KEY_PEPPER");
  return loadGeneratedSecret(dataDir, PEPPER_FILE);
}

/**
 * The pepper a node with this environment uses, for tools that hash keys for it: the
 * configured one, else DATA_DIR's generated file — never generated here (a new pepper would
 * match no node), so null when there is none yet.
 */
export function existingPepper(configured: string | null, dataDir: string): Buffer | null {
  if (configured) return secretFromEnv(configured, "BLACKTREE_API_KEY_PEPPER");
  return readGeneratedSecret(dataDir, PEPPER_FILE);
}

function keysInvalid(message: string, variable = "BLACKTREE_API_KEYS") {
  return blacktreeError("CONFIG_INVALID", `${variable}: ${message}`, { fields: [{ field: variable, message }] });
}
