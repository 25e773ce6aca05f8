import type { BrowserContext, Page } from "playwright-core";
import { BackendClient } from "../support/amqp";
import { ensureDashboardBuilt, launchBrowser, screenshot } from "../support/browser";
import { entriesFor, readJournal, useControlledTarget, waitForEntry, writeControl } from "../support/controlled";
import { startNode, TEST_KEYS, TestNode } from "../support/orchestrator";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * The dashboard end to end: Debian's Chromium (playwright-core) against a real node with
 * the controlled target (jobs run until the test says), on a vhost of its own (dead letters
 * and their replay go through RabbitMQ). One browser for the file, a tab per signed-in key.
 */
let node: TestNode;
let vhost: TestVhost;
let backend: BackendClient;
let browser: BrowserContext;
const run = Math.random().toString(36).slice(2, 8);
let submitted = 0;

beforeAll(async () => {
  ensureDashboardBuilt();
  vhost = createVhost("h14c-dashboard");
  node = await startNode({ env: { AMQP_URL: vhost.url }, configure: useControlledTarget });
  backend = await BackendClient.connect("test-h14c-dashboard", vhost.url);
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  try {
    await browser?.close();
    await backend?.close();
    await node?.stop();
  } finally {
    vhost?.remove();
  }
});

type Role = keyof typeof TEST_KEYS;

/** Submits a `ctl` job over REST with a role's key; without runMs its worker runs until stopped or told to exit. */
async function submitCtl(deploymentId: string, extra: Record<string, unknown> = {}, role: Role = "operator"): Promise<string> {
  const res = await node.http("POST", "/api/jobs", { type: "ctl", deploymentId, ...extra }, { authorization: `Bearer ${TEST_KEYS[role]}`, "idempotency-key": `${deploymentId}-${++submitted}` });
  if (res.status !== 202) throw new Error(`submit refused (${res.status}): ${res.text}`);
  return res.body.job.id as string;
}

async function state(id: string): Promise<string> {
  return (await node.http("GET", `/api/jobs/${encodeURIComponent(id)}`)).body.job.state;
}

/** A new tab signed in with a role's key through the sign-in form. */
async function signedIn(role: Role): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  await page.goto(node.url + "/");
  await page.fill("#api-key", TEST_KEYS[role]);
  await page.click("button[type=submit]");
  await page.waitForSelector('[data-testid="me"]');
  return page;
}

/** The launch key of a job's current attempt (the controlled target's workers are keyed by it). */
async function launchKey(id: string): Promise<string> {
  const entry = await waitForEntry(node.dataDir, (e) => e.op === "launched" && readJournal(node.dataDir).some((l) => l.op === "launch" && l.key === e.key && l.jobId === id));
  return entry.key;
}

/** Posts a worker callback with the token the launch of `key` carried. */
async function asWorker(key: string, route: "started" | "log" | "result", body: unknown = {}): Promise<void> {
  const launched = entriesFor(readJournal(node.dataDir), key, "launched")[0];
  const res = await fetch(`${launched.callbackUrl}/${route}`, { method: "POST", headers: { authorization: `Bearer ${launched.callbackToken}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`worker ${route}: ${res.status} ${await res.text()}`);
}

const row = (id: string) => `tr[data-job="${id}"]`;
const jobPage = (page: Page, id: string) => page.goto(`${node.url}/#/jobs/${encodeURIComponent(id)}`);

describe("dashboard", () => {
  test("the gateway serves the built files at / with a strict policy, and the API key is kept for the tab only", async () => {
    const res = await fetch(node.url + "/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    const html = await res.text();
    // Everything is local: no script or stylesheet from another origin.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect((await fetch(node.url + "/api/whoami")).status).toBe(401);

    const page = await browser.newPage();
    await page.goto(node.url + "/");
    await page.fill("#api-key", "not-a-key");
    await page.click("button[type=submit]");
    await page.waitForSelector("text=This key is not valid.");
    await page.fill("#api-key", TEST_KEYS.operator);
    await page.click("button[type=submit]");
    await expect(page.textContent('[data-testid="me"]')).resolves.toContain("operator");
    // The page's globals (this file compiles without the DOM library).
    const stored = await page.evaluate(() => {
      const w = globalThis as any;
      return { session: w.sessionStorage.getItem("blacktree.apiKey"), local: w.localStorage.length, url: w.location.href, html: w.document.documentElement.outerHTML };
    });
    expect(stored.session).toBe(TEST_KEYS.operator);
    expect(stored.local).toBe(0);
    expect(stored.url).not.toContain(TEST_KEYS.operator);
    expect(stored.html).not.toContain(TEST_KEYS.operator);
    // Once per session: a reload keeps it, a new tab asks again.
    await page.reload();
    await page.waitForSelector('[data-testid="me"]');
    const other = await browser.newPage();
    await other.goto(node.url + "/");
    await other.waitForSelector("#api-key");
    await Promise.all([page.close(), other.close()]);
  });

  test("a job submitted through the form goes live to succeeded without a reload: log tail, history, result with its image URL", async () => {
    const page = await signedIn("operator");
    await page.evaluate(() => ((globalThis as any).__sameDocument = true));
    await page.click("summary:has-text('Submit a job')");
    await page.fill('textarea[name="job"]', JSON.stringify({ type: "ctl", deploymentId: `dash-ok-${run}` }));
    await page.click('form:has(textarea) button[type="submit"]');
    // The form opens the new job's page, which follows the job's own stream.
    await page.waitForSelector('[data-testid="job-id"]');
    const id = (await page.textContent('[data-testid="job-id"]'))!;
    expect((await node.http("GET", `/api/jobs/${encodeURIComponent(id)}`)).body.job.deploymentId).toBe(`dash-ok-${run}`);
    await page.waitForSelector('.title [data-testid="live"][data-status="live"]');
    const key = await launchKey(id);
    await asWorker(key, "started");
    await page.waitForSelector('.title [data-state="running"]');
    // The log tail follows the log stream: lines show as the worker posts them.
    await page.waitForSelector('h2 [data-testid="live"][data-status="live"]');
    await asWorker(key, "log", { lines: ["building the image", "step 1/2: FROM busybox"] });
    await page.waitForSelector('[data-testid="log"] >> text=step 1/2: FROM busybox');
    await asWorker(key, "result", { imageUrl: `registry.local/dash-${run}:1` });
    writeControl(node.dataDir, { keys: { [key]: { exitNow: 0 } } });
    await page.waitForSelector('.title [data-state="succeeded"]', { timeout: 20_000 });
    await expect(page.textContent('[data-testid="image-url"]')).resolves.toBe(`registry.local/dash-${run}:1`);
    const history = await page.textContent('[data-testid="history"]');
    expect(history).toContain("queued");
    expect(history).toContain("succeeded");
    expect(await page.locator('[data-testid="attempts"] tbody tr').count()).toBe(1);
    // Final: no button to cancel or retry a success.
    expect(await page.locator('[data-testid="cancel"], [data-testid="retry"]').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as any).__sameDocument)).toBe(true);
    await screenshot(page, "job");
    await page.close();
  });

  test("the operator's list shows a new job and its changes live; the operator cancels it from its page", async () => {
    const page = await signedIn("operator");
    await page.evaluate(() => ((globalThis as any).__sameDocument = true));
    // An operator's list follows the stream of all jobs.
    await page.waitForSelector('.title [data-testid="live"][data-status="live"]');
    const id = await submitCtl(`dash-cancel-${run}`);
    await page.waitForSelector(`${row(id)} [data-state="launching"], ${row(id)} [data-state="running"]`);
    const key = await launchKey(id);
    await asWorker(key, "started");
    await page.waitForSelector(`${row(id)} [data-state="running"]`);
    expect(await page.evaluate(() => (globalThis as any).__sameDocument)).toBe(true);
    await page.click(`${row(id)} a`);
    await page.waitForSelector('.title [data-state="running"]');
    await page.click('[data-testid="cancel"]');
    await page.waitForSelector('.title [data-state="cancelled"]');
    expect(await state(id)).toBe("cancelled");
    // Its worker was stopped, and a cancelled job offers a retry instead.
    await waitForEntry(node.dataDir, (e) => e.op === "stopped" && e.key === key);
    expect(await page.locator('[data-testid="cancel"]').count()).toBe(0);
    await page.waitForSelector('[data-testid="retry"]');
    await page.close();
  });

  test("an operator retries a failed job: a second attempt appears", async () => {
    const page = await signedIn("operator");
    const id = await submitCtl(`dash-retry-${run}`, { runMs: 50, exitCode: 3 });
    await waitFor(async () => (await state(id)) === "failed", { timeout: 20_000, message: "job never failed" });
    await jobPage(page, id);
    await page.waitForSelector('.title [data-state="failed"]');
    await page.click('[data-testid="retry"]');
    await page.waitForSelector('[data-testid="attempts"] tbody tr:nth-child(2)', { timeout: 20_000 });
    await page.waitForSelector('[data-testid="history"] >> text=job.retried');
    await page.waitForSelector('.title [data-state="failed"]', { timeout: 20_000 });
    await page.close();
  });

  test("a queued job says why it waits: the key limit its deployment holds", async () => {
    const page = await signedIn("operator");
    const deployment = `dash-wait-${run}`;
    const blocker = await submitCtl(deployment);
    await waitFor(async () => (await state(blocker)) === "running" || (await state(blocker)) === "launching", { message: "blocker never launched" });
    const waiting = await submitCtl(deployment);
    await jobPage(page, waiting);
    await page.waitForSelector('[data-testid="waiting"][data-reason="limit"]');
    const text = await page.textContent('[data-testid="waiting"]');
    expect(text).toContain("key limit");
    expect(text).toContain("1 of 1 in use");
    await screenshot(page, "why-waiting");
    // The blocker ends: the waiting job runs, and the box goes.
    await node.http("POST", `/api/jobs/${encodeURIComponent(blocker)}/cancel`);
    await page.waitForSelector('.title [data-state="launching"], .title [data-state="running"]', { timeout: 20_000 });
    expect(await page.locator('[data-testid="waiting"]').count()).toBe(0);
    await node.http("POST", `/api/jobs/${encodeURIComponent(waiting)}/cancel`);
    await page.close();
  });

  test("a submitter sees their own jobs without the operator's buttons and pages", async () => {
    const failed = await submitCtl(`dash-sub-${run}`, { runMs: 10, exitCode: 1 }, "submitter");
    const running = await submitCtl(`dash-sub2-${run}`, {}, "submitter");
    const others = await submitCtl(`dash-other-${run}`, { runMs: 10 }, "operator");
    await waitFor(async () => (await state(failed)) === "failed", { timeout: 20_000, message: "job never failed" });
    const page = await signedIn("submitter");
    await expect(page.textContent('[data-testid="me"]')).resolves.toContain("submitter");
    await page.waitForSelector(`${row(failed)} [data-state="failed"]`);
    expect(await page.locator(row(others)).count()).toBe(0);
    // The stream of all jobs is an operator's: a submitter's list polls.
    await page.waitForSelector('.title [data-testid="live"][data-status="polling"]');
    expect(await page.locator('header a[href="#/dead-letters"], header a[href="#/plugins"]').count()).toBe(0);
    // Another key's job does not exist for this key.
    await jobPage(page, others);
    await page.waitForSelector(`text=No job '${others}'`);
    await jobPage(page, failed);
    await page.waitForSelector('.title [data-state="failed"]');
    expect(await page.locator('[data-testid="retry"]').count()).toBe(0);
    await jobPage(page, running);
    await page.waitForSelector(".title .state");
    expect(await page.locator('[data-testid="cancel"]').count()).toBe(0);
    await node.http("POST", `/api/jobs/${encodeURIComponent(running)}/cancel`);
    await waitFor(async () => (await state(running)) === "cancelled", { message: "never cancelled" });
    // The activity charts count a submitter's own jobs only.
    const alice = { authorization: `Bearer ${TEST_KEYS.submitter}` };
    const own = (await node.http("GET", "/api/jobs?limit=500", undefined, alice)).body.items.filter((j: any) => ["succeeded", "failed", "timed_out", "cancelled"].includes(j.state));
    const stats = (await node.http("GET", "/api/stats", undefined, alice)).body;
    expect(stats.buckets.reduce((n: number, b: any) => n + b.succeeded + b.failed, 0)).toBe(own.length);
    expect(own.length).toBe(2);
    await page.close();
  });

  test("the list filters by state, type, deployment and submitter (in the URL's hash, nothing secret)", async () => {
    const page = await signedIn("operator");
    const rows = async () => page.locator('[data-testid="jobs"] tbody tr').evaluateAll((trs) => trs.map((tr) => tr.textContent ?? ""));
    // Every field set each time (the form is rebuilt from the hash after each Filter).
    const filter = async (fields: Record<string, string>) => {
      await page.selectOption('select[name="state"]', fields.state ?? "");
      for (const name of ["type", "deploymentId", "submittedBy"]) await page.fill(`input[name="${name}"]`, fields[name] ?? "");
      await page.click('button:has-text("Filter")');
    };
    await filter({ deploymentId: `dash-sub-${run}` });
    await waitFor(async () => (await rows()).length === 1, { message: "deployment filter" });
    expect((await rows())[0]).toContain("alice");
    expect(await page.evaluate(() => (globalThis as any).location.hash)).toBe(`#/jobs?deploymentId=dash-sub-${run}`);
    await filter({ submittedBy: "alice", state: "failed" });
    await waitFor(async () => {
      const r = await rows();
      return r.length >= 1 && r.every((t) => t.includes("alice") && t.includes("failed"));
    }, { message: "submitter and state filters" });
    await filter({ type: "no-such-type" });
    await page.waitForSelector("text=No jobs.");
    await page.close();
  });

  test("dead letters are listed and replayed to execute.queue", async () => {
    backend.publishJob(JSON.stringify({ type: "ctl", note: `no deployment ${run}` }));
    await backend.confirmed();
    const letter = await waitFor(async () => (await node.http("GET", "/api/dead-letters")).body.items.find((l: any) => String(l.body).includes(run)), { message: "dead letter stored" });
    const page = await signedIn("operator");
    await page.click('header a[href="#/dead-letters"]');
    const rowOf = `tr[data-letter="${letter.id}"]`;
    await page.waitForSelector(rowOf);
    await page.click(`${rowOf} button`);
    await page.waitForSelector("text=Replayed");
    await waitFor(async () => (await node.http("GET", "/api/dead-letters")).body.items.find((l: any) => l.id === letter.id)?.replayCount >= 1, { message: "never replayed" });
    await page.close();
  });

  test("an admin sees the loaded plugins and targets; the activity charts draw the last hour", async () => {
    const page = await signedIn("admin");
    await page.click('header a[href="#/plugins"]');
    await page.waitForSelector('[data-testid="targets"] >> text=controlled');
    expect(await page.textContent('[data-testid="plugins"]')).toContain("controlled");
    await page.click('header a[href="#/activity"]');
    await page.waitForSelector('[data-testid="throughput"] canvas');
    await page.waitForSelector('[data-testid="durations"] canvas');
    // The jobs this file finished are counted.
    const stats = (await node.http("GET", "/api/stats")).body;
    const done = stats.buckets.reduce((n: number, b: any) => n + b.succeeded + b.failed, 0);
    expect(done).toBeGreaterThanOrEqual(3);
    await expect(page.textContent("section .hint")).resolves.toContain(`${done} jobs finished`);
    await screenshot(page, "activity");
    // The list with every job this file ran, in their states.
    await page.click('header a[href="#/jobs"]');
    await page.waitForSelector('.title [data-testid="live"][data-status="live"]');
    await page.waitForSelector('[data-testid="jobs"] [data-state="succeeded"]');
    await screenshot(page, "jobs");
    await page.close();
  });
});
