/**
 * Field checks task types share. Each returns the normalized value, or throws a
 * VALIDATION_FAILED error naming the field.
 */
import path from "node:path";
import net from "node:net";
import { fieldError } from "./errors";

const SHORTHAND = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;
const SCP_STYLE = /^([A-Za-z0-9_.-]+)@([A-Za-z0-9.-]+):([A-Za-z0-9_./-]+)$/;

export interface RepositoryPolicy {
  allowLocalRepositories: boolean;
}

/**
 * Accepts https:// and ssh:// URLs, scp-style `git@host:owner/repo.git`, the GitHub
 * shorthand `owner/repo` (normalized to https://github.com/owner/repo) and, only when the
 * policy allows it, an absolute local path or file:// URL. Refuses everything git would
 * treat as a transport helper or an option (`ext::`, `-…`), and credentials in URLs.
 */
export function checkRepository(value: string, policy: RepositoryPolicy, field = "repository"): string {
  if (value.length > 2048) fieldError(field, "is longer than 2048 characters");
  // The real reason first: `<transport>::<address>` makes git run a transport helper (`ext::sh -c …` runs a command).
  const helper = /^([A-Za-z][A-Za-z0-9+.-]*)::/.exec(value);
  if (helper) fieldError(field, `uses the git transport helper '${helper[1].slice(0, 32)}::', which is not allowed (only https://, ssh://, git@host:path or owner/repo)`);
  if (/[\0-\x1f\x7f\s]/.test(value)) fieldError(field, "must not contain spaces or control characters");
  if (value.startsWith("-")) fieldError(field, "must not start with '-'");
  // Before any parsing: URL parsing would resolve `/../` (and `%2e%2e`) away silently.
  if (/(^|[/:])(\.|%2e){2}(\/|$)/i.test(value)) fieldError(field, "must not contain '..' segments");
  if (SHORTHAND.test(value) && !value.includes("..")) return `https://github.com/${value.replace(/\.git$/, "")}`;
  if (value.startsWith("/") || value.startsWith("file://")) {
    if (!policy.allowLocalRepositories) fieldError(field, "is a local repository, which this orchestrator's policy does not allow");
    const local = value.startsWith("file://") ? decodeURIComponent(value.slice("file://".length)) : value;
    if (!path.isAbsolute(local) || local.split("/").includes("..")) fieldError(field, "must be an absolute local path without '..'");
    return path.normalize(local);
  }
  const scp = SCP_STYLE.exec(value);
  if (scp) {
    checkHost(scp[2], field);
    if (scp[3].split("/").includes("..")) fieldError(field, "must not contain '..'");
    return value;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fieldError(field, "must be an https:// or ssh:// git URL, git@host:owner/repo, or owner/repo");
  }
  if (url.protocol !== "https:" && url.protocol !== "ssh:") fieldError(field, `uses '${url.protocol}', only https:// and ssh:// are allowed`);
  if (url.password || (url.protocol === "https:" && url.username)) fieldError(field, "must not carry credentials; send the token in the `token` field");
  if (url.search || url.hash) fieldError(field, "must not have a query or fragment");
  checkHost(url.hostname, field);
  if (url.pathname.split("/").includes("..")) fieldError(field, "must not contain '..'");
  return url.toString();
}

function checkHost(host: string, field: string) {
  const h = host.replace(/^\[|\]$/g, "").replace(/\.$/, "").toLowerCase(); // `localhost.` is localhost
  if (h === "localhost" || h.endsWith(".localhost")) fieldError(field, "must not point at this machine");
  if (net.isIP(h) && isNonPublicIp(h)) fieldError(field, "must not point at a loopback, private, link-local or metadata address");
}

/** Loopback, private, link-local (cloud metadata) and unspecified addresses. */
export function isNonPublicIp(ip: string): boolean {
  if (net.isIPv4(ip)) {
    const [a, b] = ip.split(".").map(Number);
    // 0/8, 10/8, 127/8, 169.254/16 (metadata), 172.16/12, 192.168/16, 100.64/10 (CGNAT), 192.0.0/24, 198.18/15, multicast and reserved.
    return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || (a === 192 && b === 0 && ip.split(".")[2] === "0") || (a === 198 && (b === 18 || b === 19)) || a >= 224;
  }
  const v6 = ip.toLowerCase();
  if (v6.startsWith("::ffff:")) {
    const rest = v6.slice(7);
    // IPv4-mapped, also in the hex form URL parsing produces: ::ffff:7f00:1 is 127.0.0.1.
    const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(rest);
    return hex ? isNonPublicIp([parseInt(hex[1], 16) >> 8, parseInt(hex[1], 16) & 255, parseInt(hex[2], 16) >> 8, parseInt(hex[2], 16) & 255].join(".")) : isNonPublicIp(rest);
  }
  return v6 === "::" || v6 === "::1" || /^fe[89ab]/.test(v6) || v6.startsWith("fc") || v6.startsWith("fd") || v6.startsWith("ff") || v6.startsWith("64:ff9b:");
}

/** `git check-ref-format` rules for a branch name, and never an option. */
export function checkGitRef(value: string, field = "branch"): string {
  const bad = (why: string) => fieldError(field, why, value);
  if (value.length === 0 || value.length > 255) bad("must be 1 to 255 characters");
  if (value.startsWith("-")) bad("must not start with '-'");
  if (/[\0-\x20\x7f~^:?*[\\]/.test(value)) bad("must not contain spaces, control characters or any of ~ ^ : ? * [ \\");
  if (value.includes("..") || value.includes("@{") || value.includes("//")) bad("must not contain '..', '@{' or '//'");
  if (value === "@" || value.startsWith("/") || value.endsWith("/") || value.endsWith(".") || value.endsWith(".lock")) bad("is not a valid git branch name");
  if (value.split("/").some((part) => part.startsWith(".") || part.endsWith(".lock"))) bad("is not a valid git branch name");
  return value;
}

/** A path inside the repository: relative, normalized, never escaping it. Empty stays empty. */
export function checkRelativePath(value: string, field: string, opts: { allowEmpty?: boolean } = {}): string {
  if (value === "" && opts.allowEmpty) return "";
  if (value.length > 1024) fieldError(field, "is longer than 1024 characters");
  if (/[\0-\x1f\x7f\\]/.test(value)) fieldError(field, "must not contain control characters or backslashes");
  if (path.posix.isAbsolute(value)) fieldError(field, "must be relative to the repository");
  const normalized = path.posix.normalize(value).replace(/\/+$/, "") || ".";
  if (normalized === ".." || normalized.startsWith("../")) fieldError(field, "must not leave the repository");
  return normalized;
}
