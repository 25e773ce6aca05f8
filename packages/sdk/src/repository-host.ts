import dns from "node:dns";
import net from "node:net";
import { blacktreeError, fieldError } from "./errors";
import { isNonPublicIp } from "./checks";

/** Resolves a host name to all its addresses (dns.lookup with `all: true` by default). */
export type HostResolver = (host: string) => Promise<string[]>;

export const DEFAULT_ALLOWED_HOSTS = ["github.com", "gitlab.com", "bitbucket.org"];
const DEFAULT_DNS_TIMEOUT_MS = 2000;
/**
 * Resolver answers that mean "ask again later", not "no such name": getaddrinfo's
 * EAI_AGAIN, c-ares' ETIMEOUT / ESERVFAIL / ECONNREFUSED, a socket ETIMEDOUT, and our own
 * timeout. ENOTFOUND, ENODATA, EAI_FAIL (and anything else) are answers about the name.
 */
const TRANSIENT_DNS_CODES = new Set(["EAI_AGAIN", "ETIMEOUT", "ETIMEDOUT", "ESERVFAIL", "ECONNREFUSED"]);

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
 * that does not exist is refused, with the reason; a resolver that cannot answer now (a
 * timeout, EAI_AGAIN, …) raises a retryable DEPENDENCY_UNAVAILABLE instead, so a DNS
 * outage never makes a permanent rejection. Listed hosts are trusted without a lookup:
 * the operator vouched for them (and tests run offline).
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
  let timedOut = false;
  let addresses: string[];
  try {
    addresses = await Promise.race([
      resolve(host),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(Object.assign(new Error("timeout"), { code: "ETIMEOUT" }));
        }, timeoutMs);
      }),
    ]);
  } catch (err) {
    const code = typeof (err as NodeJS.ErrnoException)?.code === "string" ? (err as NodeJS.ErrnoException).code! : "ERROR";
    if (TRANSIENT_DNS_CODES.has(code)) {
      const why = timedOut ? `did not resolve within ${timeoutMs} ms` : `could not be resolved right now (${code})`;
      throw blacktreeError("DEPENDENCY_UNAVAILABLE", `DNS: repository host '${host}' ${why}; try again later`, { dependency: "dns", host, code });
    }
    return fieldError(field, `has host '${host}', which could not be resolved (${code})`);
  } finally {
    clearTimeout(timer);
  }
  if (addresses.length === 0) fieldError(field, `has host '${host}', which resolves to no address`);
  if (addresses.some((a) => !net.isIP(a) || isNonPublicIp(a))) fieldError(field, `has host '${host}', which resolves to a loopback, private, link-local or metadata address`);
}
