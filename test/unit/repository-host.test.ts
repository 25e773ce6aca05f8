import { checkRepository, isNonPublicIp } from "../../lib/plugins/checks";
import { checkRepositoryHost, HostResolver } from "../../lib/plugins/repository-host";
import { tooDeepPath } from "../../lib/jobs/json-shape";
import { isRetryable } from "../../lib/errors";

const DEV = { allowedHosts: ["github.com", "gitlab.com", "bitbucket.org", "*"], dnsTimeoutMs: 50 };
const PROD = { allowedHosts: ["github.com", "gitlab.com", "bitbucket.org"] };
const fakeDns = (table: Record<string, string[] | Error | "hang">): HostResolver => (host) => {
  const entry = table[host];
  if (entry === "hang") return new Promise(() => undefined);
  if (entry instanceof Error) return Promise.reject(entry);
  return entry ? Promise.resolve(entry) : Promise.reject(Object.assign(new Error("not found"), { code: "ENOTFOUND" }));
};
const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err: any) {
    return { type: err.type, field: err.data?.fields?.[0]?.field, message: err.data?.fields?.[0]?.message as string };
  }
  return null;
};
const failure = async (p: Promise<unknown>) => p.then(() => null, (err: any) => err);
const dnsError = (code: string) => Object.assign(new Error(`getaddrinfo ${code} x`), { code });

describe("repository host policy", () => {
  const dns = fakeDns({
    "git.example.com": ["140.82.112.3"],
    "rebind.example.com": ["140.82.112.3", "10.1.2.3"],
    "meta.example.com": ["169.254.169.254"],
    "ecs.example.com": ["169.254.170.2"],
    "v6meta.example.com": ["fd00:ec2::254"],
    "mapped.example.com": ["::ffff:7f00:1"],
    "slow.example.com": "hang",
  });

  test("listed hosts are trusted without a lookup; others need '*' and public addresses only", async () => {
    const lookups: string[] = [];
    const counting: HostResolver = (h) => (lookups.push(h), dns(h));
    await checkRepositoryHost("https://github.com/o/r", PROD, counting);
    await checkRepositoryHost("git@github.com:o/r.git", PROD, counting);
    expect(lookups).toEqual([]);
    await checkRepositoryHost("https://git.example.com/o/r", DEV, counting);
    expect(lookups).toEqual(["git.example.com"]);
    expect(await refusal(checkRepositoryHost("https://git.example.com/o/r", PROD, counting))).toMatchObject({ field: "repository", message: expect.stringMatching(/not in the allowed hosts/) });
  });

  test.each([
    ["https://rebind.example.com/o/r", /private|loopback/],
    ["https://meta.example.com/o/r", /metadata/],
    ["ssh://git@ecs.example.com/o/r", /metadata/],
    ["https://v6meta.example.com/o/r", /metadata/],
    ["https://mapped.example.com/o/r", /loopback/],
    ["https://nowhere.example.com/o/r", /could not be resolved \(ENOTFOUND\)/],
  ])("%s is refused (%s)", async (repo, why) => {
    expect(await refusal(checkRepositoryHost(repo, DEV, dns))).toMatchObject({ type: "VALIDATION_FAILED", field: "repository", message: expect.stringMatching(why) });
  });

  /**
   * A resolver that says "try again" is not a verdict on the job: a retryable
   * DEPENDENCY_UNAVAILABLE (503), never a validation failure. On the code before this fix
   * each of these was a VALIDATION_FAILED naming `repository` (so a DNS outage made
   * permanent `rejected` jobs).
   */
  test.each([["EAI_AGAIN"], ["ETIMEOUT"], ["ETIMEDOUT"], ["ESERVFAIL"], ["ECONNREFUSED"]])("resolver error %s is DEPENDENCY_UNAVAILABLE, retryable, 503", async (code) => {
    const err = await failure(checkRepositoryHost("https://git.example.com/o/r", DEV, fakeDns({ "git.example.com": dnsError(code) })));
    expect(err).toMatchObject({ type: "DEPENDENCY_UNAVAILABLE", code: 503, retryable: true, data: { dependency: "dns", host: "git.example.com", code } });
    expect(err.message).toMatch(new RegExp(`git\\.example\\.com.*${code}`));
    expect(isRetryable(err)).toBe(true);
  });

  test("a lookup that does not answer within dnsTimeoutMs is DEPENDENCY_UNAVAILABLE too", async () => {
    const err = await failure(checkRepositoryHost("https://slow.example.com/o/r", DEV, dns));
    expect(err).toMatchObject({ type: "DEPENDENCY_UNAVAILABLE", retryable: true, data: { code: "ETIMEOUT" } });
    expect(err.message).toMatch(/did not resolve within 50 ms/);
  });

  test.each([["ENOTFOUND"], ["ENODATA"], ["EAI_FAIL"]])("resolver error %s stays a validation failure naming repository (a permanent answer)", async (code) => {
    expect(await refusal(checkRepositoryHost("https://gone.example.com/o/r", DEV, fakeDns({ "gone.example.com": dnsError(code) })))).toMatchObject({
      type: "VALIDATION_FAILED",
      field: "repository",
      message: expect.stringContaining(`could not be resolved (${code})`),
    });
  });

  test("the real resolver: a host name that resolves to loopback here (ssh:// keeps 2130706433 a name) is refused", async () => {
    expect(await refusal(checkRepositoryHost("ssh://git@2130706433/o/r", DEV))).toMatchObject({ field: "repository", message: expect.stringMatching(/loopback/) });
  });

  test("syntax: '..' before URL normalization, IPv4-mapped hex, metadata literals", () => {
    const local = { allowLocalRepositories: false };
    for (const bad of ["https://github.com/o/../../r", "https://github.com/o/%2e%2e/r", "https://[::ffff:127.0.0.1]/o/r", "https://localhost./o/r", "https://[fd00:ec2::254]/x", "https://169.254.170.2/x", "ssh://[::ffff:a9fe:a9fe]/x", "ext::sh -c x", "file:///etc", "--upload-pack=x"]) {
      expect(() => checkRepository(bad, local)).toThrow(expect.objectContaining({ type: "VALIDATION_FAILED" }));
    }
    expect(isNonPublicIp("::ffff:a9fe:a9fe")).toBe(true);
    expect(isNonPublicIp("140.82.112.3")).toBe(false);
  });

  test("nesting depth is measured without recursion", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(tooDeepPath({ a: deep })).toMatch(/^a(\.0)+$/);
    expect(tooDeepPath({ retry: { retryOn: ["X"] } })).toBeNull();
  });
});
