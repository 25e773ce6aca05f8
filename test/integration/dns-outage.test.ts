import { randomUUID } from "node:crypto";
import fs from "node:fs";
import type { HostResolver } from "../../lib/plugins/repository-host";
import { backendMessage, BackendClient } from "../support/amqp";
import { useInstantTarget } from "../support/instant";
import { startNode, TestNode } from "../support/orchestrator";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * A DNS outage is not a verdict on the job. The repository host check's resolver fails as
 * a resolver does when it cannot answer now (EAI_AGAIN, a lookup that hangs): REST answers
 * 503 DEPENDENCY_UNAVAILABLE and stores nothing; an execute.queue message is requeued and
 * becomes a normal job once DNS answers. A name that does not exist stays a 422 naming
 * `repository` (and, over AMQP, a rejected job).
 *
 * On the code before this fix: REST answered 422 VALIDATION_FAILED for EAI_AGAIN and for
 * the hanging lookup, and the AMQP message became a permanent `rejected` job at once.
 */
const HOST = "git.example.com";
const REPO = `https://${HOST}/o/r`;
type Dns = "ok" | "again" | "hang" | "notfound";
let dnsMode: Dns = "ok";
/** The next `failuresLeft` lookups fail with EAI_AGAIN, whatever the mode. */
let failuresLeft = 0;
const lookups: string[] = [];
const resolveHost: HostResolver = async (host) => {
  lookups.push(host);
  if (host !== HOST) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
  if (failuresLeft > 0) {
    failuresLeft -= 1;
    throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${host}`), { code: "EAI_AGAIN" });
  }
  if (dnsMode === "again") throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${host}`), { code: "EAI_AGAIN" });
  if (dnsMode === "hang") return new Promise<string[]>(() => undefined);
  if (dnsMode === "notfound") throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
  return ["140.82.112.3"];
};

let vhost: TestVhost | undefined;
let node: TestNode | undefined;
let backend: BackendClient | undefined;
const run = randomUUID().slice(0, 8);

beforeAll(async () => {
  vhost = createVhost("dns");
  backend = await BackendClient.connect("test-dns", vhost.url);
  node = await startNode({
    env: { AMQP_URL: vhost.url, AMQP_REQUEUE_DELAY_MS: "50" },
    configure: (config) => {
      useInstantTarget(config);
      config.policy.dnsTimeoutMs = 200;
    },
    resolveHost,
  });
}, 120_000);

afterAll(async () => {
  try {
    await node?.stop();
    await backend?.close();
  } finally {
    vhost?.remove();
    if (node) fs.rmSync(node.dataDir, { recursive: true, force: true });
  }
});

const submit = (deploymentId: string) => node!.http("POST", "/api/jobs", { deploymentId, repository: REPO, createdAt: new Date().toISOString() });
const jobsOf = async (deploymentId: string) => (await node!.http("GET", `/api/jobs?deploymentId=${deploymentId}`)).body.items as any[];

describe("repository host check while DNS is down", () => {
  test("REST: EAI_AGAIN and a lookup that hangs are 503 DEPENDENCY_UNAVAILABLE, nothing stored", async () => {
    for (const mode of ["again", "hang"] as const) {
      dnsMode = mode;
      const id = `dns-rest-${mode}-${run}`;
      const res = await submit(id);
      expect({ mode, status: res.status, type: res.body?.error?.type }).toEqual({ mode, status: 503, type: "DEPENDENCY_UNAVAILABLE" });
      expect(res.body.error.message).toMatch(new RegExp(HOST.replace(/\./g, "\\.")));
      expect(await jobsOf(id)).toEqual([]);
    }
    // Once DNS answers, the same request is accepted.
    dnsMode = "ok";
    const res = await submit(`dns-rest-ok-${run}`);
    expect(res.status).toBe(202);
  });

  test("REST: a name that does not exist is still 422 naming repository", async () => {
    dnsMode = "notfound";
    const res = await submit(`dns-rest-notfound-${run}`);
    dnsMode = "ok";
    expect(res.status).toBe(422);
    expect(res.body.error.type).toBe("VALIDATION_FAILED");
    expect(res.body.error.fields.map((f: any) => f.field)).toEqual(["repository"]);
  });

  test("AMQP: a message whose lookup fails twice with EAI_AGAIN is requeued, then stored as a normal job", async () => {
    const id = `dns-amqp-${run}`;
    dnsMode = "ok";
    failuresLeft = 2;
    const before = lookups.length;
    backend!.publishJob(backendMessage(id, { repository: REPO }));
    await backend!.confirmed();
    const [job] = await waitFor(async () => {
      const jobs = await jobsOf(id);
      return jobs.length ? jobs : null;
    }, { timeout: 20_000, message: "job stored" });
    expect(job.state).not.toBe("rejected");
    expect(lookups.slice(before).filter((h) => h === HOST)).toHaveLength(3);
    await waitFor(async () => (await jobsOf(id))[0]?.state === "succeeded", { timeout: 20_000, message: "job succeeded" });
    expect(await jobsOf(id)).toHaveLength(1);
  });

  test("AMQP: a name that does not exist is a rejected job naming repository", async () => {
    const id = `dns-amqp-notfound-${run}`;
    dnsMode = "notfound";
    backend!.publishJob(backendMessage(id, { repository: REPO }));
    await backend!.confirmed();
    const [job] = await waitFor(async () => {
      const jobs = await jobsOf(id);
      return jobs.length ? jobs : null;
    }, { timeout: 20_000, message: "rejected job stored" });
    dnsMode = "ok";
    expect(job.state).toBe("rejected");
    expect(job.error.fields.map((f: any) => f.field)).toEqual(["repository"]);
  });
});
