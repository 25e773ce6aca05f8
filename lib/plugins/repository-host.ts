import dns from "node:dns";
import net from "node:net";
import { fieldError, isNonPublicIp } from "./checks";

/** Resolves a host name to all its addresses (dns.lookup with `all: true` by default). */
export type HostResolver = (host: string) => Promise<string[]>;

export const DEFAULT_ALLOWED_HOSTS = ["github.com", "gitlab.com", "bitbucket.org"];
const DEFAULT_DNS_TIMEOUT_MS = 2000;

export interface HostPolicy {
  /** Exact host names trusted as they are; `"*"` admits any other host that resolves only to public addresses. */
  allowedHosts?: unknown;
  dnsTimeoutMs?: unknown;
}

export const systemResolver: HostResolver = (host) =>
  new Promise((resolve, reject) => dns.lookup(host, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses.map((a) => a.address)))));

/** The host a normalized repository URL points at (null for a local path). */
export function repositoryHost(repository: string): string | null {
  if (repository.startsWith("/")) return null;
  const scp = /^[A-Za-z0-9_.-]+@([A-Za-z0-9.-]+):/.exec(repository);
  if (scp) return scp[1].toLowerCase();
  try {
    return new URL(repository).hostname.replace(/^\[|\]$/g, "").toLowerCase();
  } catch {
    return null;
  }
}

/**
 * The allow-list, then — for hosts admitted only by `"*"` — a DNS check: every address
 * must be public (no loopback, private, link-local or cloud metadata address). A name
 * that does not resolve in time is refused, with the reason. Listed hosts are trusted
 * without a lookup: the operator vouched for them (and tests run offline).
 */
export async function checkRepositoryHost(repository: string, policy: HostPolicy, resolve: HostResolver = systemResolver, field = "repository"): Promise<void> {
  const host = repositoryHost(repository);
  if (host === null) return;
  const allowed = Array.isArray(policy.allowedHosts) ? (policy.allowedHosts as unknown[]).filter((h): h is string => typeof h === "string").map((h) => h.toLowerCase()) : DEFAULT_ALLOWED_HOSTS;
  if (allowed.includes(host)) return;
  if (!allowed.includes("*")) fieldError(field, `has host '${host}', which is not in the allowed hosts (policy allowedHosts)`);
  if (net.isIP(host)) {
    if (isNonPublicIp(host)) fieldError(field, "must not point at a loopback, private, link-local or metadata address");
    return;
  }
  const timeoutMs = typeof policy.dnsTimeoutMs === "number" ? policy.dnsTimeoutMs : DEFAULT_DNS_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  let addresses: string[];
  try {
    addresses = await Promise.race([
      resolve(host),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error("timeout"), { code: "ETIMEOUT" })), timeoutMs);
      }),
    ]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "ERROR";
    return fieldError(field, code === "ETIMEOUT" ? `has host '${host}', which did not resolve within ${timeoutMs} ms` : `has host '${host}', which could not be resolved (${code})`);
  } finally {
    clearTimeout(timer);
  }
  if (addresses.length === 0) fieldError(field, `has host '${host}', which resolves to no address`);
  if (addresses.some((a) => !net.isIP(a) || isNonPublicIp(a))) fieldError(field, `has host '${host}', which resolves to a loopback, private, link-local or metadata address`);
}
