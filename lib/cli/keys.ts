import fs from "node:fs";
import path from "node:path";
import { existingPepper, generateApiKey, hashedKeyEntry, PEPPER_FILE } from "../auth/api-keys";
import { describeError } from "../errors";
import { CliError, EXIT } from "./exit-codes";
import type { CliIo, Output } from "./output";

export interface KeysHashOptions {
  name: string;
  role: string;
  /** The node's DATA_DIR (where its generated pepper is), when BLACKTREE_API_KEY_PEPPER is not set. */
  dataDir?: string;
  /** Make a new key even when stdin has one. */
  generate?: boolean;
  /** Write a generated key to this file (mode 0600, never overwritten) instead of stderr. */
  out?: string;
}

/**
 * `blacktree keys hash`: the BLACKTREE_API_KEYS entry (`name:role:hmac:<hash>`) for a key
 * read from stdin, or for a new one. The hash is the node's own (lib/auth/api-keys.ts,
 * HMAC-SHA256 with the install's pepper), so the entry is accepted only by nodes with that
 * pepper — which is why the pepper is looked up exactly where a node looks for it.
 */
export async function keysHash(io: CliIo, out: Output, opts: KeysHashOptions): Promise<number> {
  const dataDir = path.resolve(opts.dataDir ?? io.env.DATA_DIR ?? "./data");
  let pepper: Buffer | null;
  try {
    pepper = existingPepper(io.env.BLACKTREE_API_KEY_PEPPER || null, dataDir);
  } catch (err) {
    throw new CliError(describeError(err).message, EXIT.usage);
  }
  if (!pepper) {
    throw new CliError(`no API key pepper: set BLACKTREE_API_KEY_PEPPER as the node has it, or pass --data-dir with the node's DATA_DIR (${path.join(dataDir, PEPPER_FILE)} does not exist)`, EXIT.usage);
  }
  const given = opts.generate || io.stdin.isTTY ? "" : (await readAll(io.stdin)).replace(/\r?\n$/, "");
  const generated = given === "";
  const key = generated ? generateApiKey() : given;
  let entry: string;
  try {
    entry = hashedKeyEntry(pepper, opts.name, opts.role, key);
  } catch (err) {
    // The node's own check; its message names the entry, never the key.
    throw new CliError(describeError(err).message.replace(/^BLACKTREE_API_KEYS: /, ""), EXIT.usage);
  }
  if (generated) {
    if (opts.out) {
      try {
        fs.writeFileSync(opts.out, key + "\n", { mode: 0o600, flag: "wx" });
      } catch (err) {
        throw new CliError(`cannot write the new key to ${opts.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.failed);
      }
      out.note(`✅ new key written to ${opts.out} (mode 0600)`);
    } else {
      // Shown once, on stderr only: stdout (what a script keeps) holds the hash alone.
      out.note(`🔑 new key for '${opts.name}' (keep it now, it is not stored anywhere): ${key}`);
    }
  }
  const hash = entry.split(":")[3];
  if (out.json) out.data({ entry, name: opts.name, role: opts.role, keysFileLine: `${opts.name}:${opts.role}:${hash}`, generated, keyFile: generated ? opts.out ?? null : null });
  else out.line(entry);
  return EXIT.ok;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}
