import fs from "node:fs";
import path from "node:path";
import { roleAllows, ROLES } from "../../lib/auth/roles";
import { createRuntime } from "../../lib/runtime";
import { ROUTES, urlOf } from "../../lib/gateway/routes";
import { ROOT, startNode, tempDir, TEST_KEYS, TestNode } from "../support/orchestrator";

/** Authentication, roles, ownership, rate limits, CORS and body limits of the REST gateway. */
let node: TestNode;
let limited: TestNode;

const KEY_OF = { admin: TEST_KEYS.admin, operator: TEST_KEYS.operator, submitter: TEST_KEYS.submitter } as const;
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const job = (deploymentId: string) => ({ type: "test", deploymentId, repository: "/tmp/none", testCommand: "true", createdAt: "2025-07-09T12:00:00Z" });

beforeAll(async () => {
  // Keep launches out of this file: nothing here needs a worker.
  node = await startNode({ env: { DISPATCH_INTERVAL_MS: "600000" }, configure: (c) => void (c.limits.global = 0) });
  limited = await startNode({ env: { BLACKTREE_RATE_LIMIT: "3", BLACKTREE_RATE_LIMIT_WINDOW_MS: "60000", BLACKTREE_CORS_ORIGINS: "https://app.example.com" } });
});

afterAll(async () => {
  await node?.stop();
  await limited?.stop();
});

describe("every route, from the route table", () => {
  const guarded = ROUTES.filter((r) => r.access !== "public");
  test.each(guarded.map((r) => [`${r.method} ${urlOf(r)}`, r] as const))("%s: 401 without a credential, 401 with a wrong key", async (_name, route) => {
    const none = await node.http(route.method, urlOf(route), route.method === "POST" ? {} : undefined, { authorization: "" });
    expect(none.status).toBe(401);
    expect(none.body.error.type).toBe("UNAUTHORIZED");
    const wrong = await node.http(route.method, urlOf(route), route.method === "POST" ? {} : undefined, bearer("not-a-key-0123456789"));
    expect(wrong.status).toBe(401);
  });

  const roleRoutes = ROUTES.filter((r) => (ROLES as readonly string[]).includes(r.access));
  const denied = roleRoutes.flatMap((r) => ROLES.filter((role) => !roleAllows(role, r.access as (typeof ROLES)[number])).map((role) => [`${r.method} ${urlOf(r)} as ${role}`, r, role] as const));
  test.each(denied)("%s: 403", async (_name, route, role) => {
    const res = await node.http(route.method, urlOf(route), route.method === "POST" ? {} : undefined, bearer(KEY_OF[role]));
    expect(res.status).toBe(403);
    expect(res.body.error.type).toBe("FORBIDDEN");
  });

  const worker = ROUTES.filter((r) => r.access === "worker");
  test.each(worker.map((r) => [`${r.method} ${urlOf(r)}`, r] as const))("%s: an admin API key is not a worker token", async (_name, route) => {
    const res = await node.http(route.method, urlOf(route), route.method === "POST" ? {} : undefined, bearer(TEST_KEYS.admin));
    expect(res.status).toBe(401);
  });

  test("the allowed role passes (X-API-Key works too); /health is open; no ~node routes", async () => {
    expect((await node.http("GET", "/api/plugins", undefined, { "x-api-key": TEST_KEYS.admin })).status).toBe(200);
    expect((await node.http("GET", "/api/dead-letters", undefined, bearer(TEST_KEYS.operator))).status).toBe(200);
    const metrics = await node.http("GET", "/metrics", undefined, bearer(TEST_KEYS.operator));
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/# HELP/);
    expect((await node.http("GET", "/health", undefined, { authorization: "" })).status).toBe(200);
    for (const p of ["/~node/health", "/~node/services", "/api/~node/actions", "/$node/list"]) expect((await node.http("GET", p)).status).toBe(404);
  });
});

describe("ownership", () => {
  test("a submitter's job records its key name; another submitter neither sees nor lists it; operators see all", async () => {
    const created = await node.http("POST", "/api/jobs", job("own-a"), bearer(TEST_KEYS.submitter));
    expect(created.status).toBe(202);
    expect(created.body.job.submittedBy).toBe("alice");
    const id = created.body.job.id;
    await node.http("POST", "/api/jobs", job("own-b"), bearer(TEST_KEYS.submitter2));

    expect((await node.http("GET", `/api/jobs/${id}`, undefined, bearer(TEST_KEYS.submitter))).status).toBe(200);
    expect((await node.http("GET", `/api/jobs/${id}`, undefined, bearer(TEST_KEYS.submitter2))).status).toBe(404);
    expect((await node.http("GET", `/api/jobs/${id}/logs`, undefined, bearer(TEST_KEYS.submitter2))).status).toBe(404);
    const bobs = await node.http("GET", "/api/jobs?limit=500", undefined, bearer(TEST_KEYS.submitter2));
    expect(bobs.body.items.map((j: any) => j.submittedBy)).toEqual(["bob"]);
    const all = await node.http("GET", "/api/jobs?limit=500", undefined, bearer(TEST_KEYS.operator));
    expect(all.body.items.map((j: any) => j.deploymentId)).toEqual(expect.arrayContaining(["own-a", "own-b"]));
    // Job keys are per caller: the same job key from another submitter names another job, and reveals nothing of the first.
    const reuse = await node.http("POST", "/api/jobs", job("own-a"), bearer(TEST_KEYS.submitter2));
    expect(reuse.status).toBe(202);
    expect(reuse.body.job.submittedBy).toBe("bob");
    expect(reuse.text).not.toContain(id);
    expect((await node.http("POST", "/api/jobs", job("own-a"), bearer(TEST_KEYS.submitter))).body.job.id).toBe(id);
  });
});

describe("limits", () => {
  test("per API key: the 4th request in the window is 429 with Retry-After; X-Forwarded-For changes nothing; other keys go on", async () => {
    for (let i = 0; i < 3; i++) expect((await limited.http("GET", "/api/jobs", undefined, { ...bearer(TEST_KEYS.submitter), "x-forwarded-for": `10.0.0.${i}` })).status).toBe(200);
    const over = await limited.http("GET", "/api/jobs", undefined, { ...bearer(TEST_KEYS.submitter), "x-forwarded-for": "10.9.9.9" });
    expect(over.status).toBe(429);
    expect(over.body.error.type).toBe("RATE_LIMITED");
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await limited.http("GET", "/api/jobs", undefined, bearer(TEST_KEYS.operator))).status).toBe(200);
  });

  test("a body over 256 kB is 413", async () => {
    const res = await node.http("POST", "/api/jobs", { ...job("big"), pad: "x".repeat(300 * 1024) });
    expect(res.status).toBe(413);
    expect(res.body.error.type).toBe("PAYLOAD_TOO_LARGE");
  });

  test("CORS allows exactly the configured origins, never one that merely contains them", async () => {
    const ok = await limited.http("OPTIONS", "/api/jobs", undefined, { origin: "https://app.example.com", "access-control-request-method": "POST" });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    for (const origin of ["https://app.example.com.evil.io", "https://evil.io/https://app.example.com", "http://app.example.com"]) {
      const res = await limited.http("OPTIONS", "/api/jobs", undefined, { origin, "access-control-request-method": "POST" });
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.status).toBe(403);
    }
    const noCors = await node.http("OPTIONS", "/api/jobs", undefined, { origin: "https://app.example.com", "access-control-request-method": "POST" });
    expect(noCors.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("start-up", () => {
  const base = (dataDir: string) => ({ PATH: process.env.PATH, DATA_DIR: dataDir, PLUGINS_CONFIG: path.join(ROOT, "plugins.config.json") });

  test("development generates one admin key (mode 0600, hashed in the keys file) and reuses it", async () => {
    const dataDir = tempDir();
    const first = await createRuntime({ env: base(dataDir), cwd: ROOT });
    await first.store.close();
    const keyFile = path.join(dataDir, "admin.key");
    expect(first.generatedAdminKeyFile).toBe(keyFile);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = fs.readFileSync(keyFile, "utf8").trim();
    expect(fs.readFileSync(path.join(dataDir, "api-keys"), "utf8")).not.toContain(key);
    expect(first.apiKeys.verify(key)).toEqual({ name: "admin", role: "admin" });
    const second = await createRuntime({ env: base(dataDir), cwd: ROOT });
    await second.store.close();
    expect(second.generatedAdminKeyFile).toBeNull();
    expect(second.apiKeys.verify(key)).toEqual({ name: "admin", role: "admin" });
  });

  test("production refuses to start without API keys or a secrets key, naming the variable", async () => {
    const env = { ...base(tempDir()), BLACKTREE_MODE: "production" };
    await expect(createRuntime({ env, cwd: ROOT })).rejects.toMatchObject({ type: "CONFIG_INVALID", message: expect.stringMatching(/BLACKTREE_API_KEYS/) });
    await expect(createRuntime({ env: { ...env, BLACKTREE_API_KEYS: "ops:operator:0123456789abcdef0123" }, cwd: ROOT })).rejects.toMatchObject({ message: expect.stringMatching(/BLACKTREE_SECRETS_KEY/) });
    await expect(createRuntime({ env: { ...env, BLACKTREE_API_KEYS: "ops:boss:0123456789abcdef0123" }, cwd: ROOT })).rejects.toMatchObject({ message: expect.stringMatching(/BLACKTREE_API_KEYS.*role/) });
  });
});
