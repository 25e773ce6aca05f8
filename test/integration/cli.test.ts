import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { BackendClient } from "../support/amqp";
import { prepareEntryPoint, runTmp } from "../support/entry-point";
import { freePort, ROOT, startNode, tempDir, TEST_KEYS, TestNode } from "../support/orchestrator";
import { createVhost, TestVhost } from "../support/vhost";
import { waitFor } from "../support/wait";

/**
 * The `blacktree` CLI as a user runs it: the real binary (bin/blacktree.ts through tsx) in a
 * child process, no terminal, against a real node (its own SQLite dir and RabbitMQ vhost).
 */
const TSX = pathToFileURL(require.resolve("tsx")).href;
const BIN = path.join(ROOT, "bin/blacktree.ts");
const PLUGIN = path.join(__dirname, "../support/plugins/script-plugin.ts");
const PEPPER = "h14d-cli-test-pepper-0123456789abcdef";

let node: TestNode;
let vhost: TestVhost;
/** Everything every CLI run printed: no key may ever appear in it. */
const printed: string[] = [];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], opts: { env?: Record<string, string>; input?: string; timeout?: number; url?: string } = {}): Promise<Run> {
  const child = spawn(process.execPath, ["--import", TSX, BIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, TMPDIR: process.env.TMPDIR ?? "/tmp", BLACKTREE_URL: opts.url ?? node.url, BLACKTREE_API_KEY: TEST_KEYS.admin, ...opts.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.end(opts.input ?? "");
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`blacktree ${args.join(" ")} did not exit within ${opts.timeout ?? 30_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeout ?? 30_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      printed.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A script job: its source runs as the worker (`report`/`sleep` are there, see the script plugin). */
const scriptArgs = (source: string, deployment: string) => ["--type", "script", "--deployment-id", deployment, "--param", `script=${source}`];
const OK_SCRIPT = `(async () => { await report("started"); console.log("hello from the h14d worker"); await sleep(300); console.log("second line"); })()`;
/** Posts a line through the worker callback (as the build worker does), then runs a while: the line is live before the end. */
const LIVE_SCRIPT = `(async () => { await report("started"); await report("log", { lines: ["live line from the worker"] }); await sleep(1500); })()`;
const FAIL_SCRIPT = `console.log("about to fail"); process.exit(3)`;
const LONG_SCRIPT = `(async () => { await report("started"); setInterval(() => {}, 1000); })()`;

async function job(id: string) {
  return (await node.http("GET", `/api/jobs/${id}`)).body;
}

/** The job's states in order, from its own history. */
async function statesOf(id: string): Promise<string[]> {
  return (await job(id)).history.filter((e: any) => e.to).map((e: any) => e.to);
}

function inOrder(text: string, words: string[]): boolean {
  let at = 0;
  for (const w of words) {
    const i = text.indexOf(w, at);
    if (i < 0) return false;
    at = i + w.length;
  }
  return true;
}

beforeAll(async () => {
  vhost = createVhost("h14d-cli");
  node = await startNode({ env: { AMQP_URL: vhost.url, REAP_INTERVAL_MS: "300" }, configure: (c) => void c.plugins.push({ use: PLUGIN }) });
}, 120_000);

afterAll(async () => {
  try {
    await node?.stop();
  } finally {
    vhost?.remove();
  }
});

describe("submit --watch", () => {
  test("prints each state and the log tail, and exits 0 for succeeded", async () => {
    const r = await cli(["submit", ...scriptArgs(OK_SCRIPT, "cli-ok"), "--watch"]);
    expect(r.code).toBe(0);
    // Both streams were there: nothing to warn about.
    expect(r.stderr).toBe("");
    const id = /submitted (job_[0-9a-f]+)/.exec(r.stdout)![1];
    const states = await statesOf(id);
    expect(states[states.length - 1]).toBe("succeeded");
    expect(states).toContain("running");
    // Every state the job went through, in its order, one line each.
    expect(inOrder(r.stdout, states)).toBe(true);
    for (const s of states) expect(r.stdout.split("\n").filter((l) => new RegExp(`\\b${s}\\b`).test(l) && !l.includes("│")).length).toBeGreaterThanOrEqual(1);
    expect(inOrder(r.stdout, ["hello from the h14d worker", "second line"])).toBe(true);
    // Not a terminal: no colours, no spinner.
    expect(r.stdout + r.stderr).not.toMatch(/\u001b\[/);
  });

  test("exits 1 for a failed job, after printing its log", async () => {
    const r = await cli(["submit", ...scriptArgs(FAIL_SCRIPT, "cli-fail"), "--watch"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/❌ failed/);
    expect(r.stdout).toContain("about to fail");
  });

  test("--json: every stdout line is JSON, from `submitted` to `end`, and nothing else", async () => {
    const r = await cli(["--json", "submit", ...scriptArgs(OK_SCRIPT, "cli-json"), "--watch"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ type: "submitted", created: true, job: { state: "queued" } });
    const id = lines[0].job.id;
    expect(lines[lines.length - 1]).toEqual({ type: "end", jobId: id, state: "succeeded", exitCode: 0 });
    const events = lines.filter((l) => l.type === "event");
    expect(events.map((e) => e.seq)).toEqual((await job(id)).history.map((e: any) => e.seq));
    expect(lines.filter((l) => l.type === "log").map((l) => l.line)).toEqual(expect.arrayContaining(["hello from the h14d worker", "second line"]));
  });

  test("log lines arrive while the job runs", async () => {
    const r = await cli(["--json", "submit", ...scriptArgs(LIVE_SCRIPT, "cli-live"), "--watch"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const live = lines.findIndex((l) => l.type === "log" && l.line === "live line from the worker");
    const done = lines.findIndex((l) => l.type === "event" && l.to === "succeeded");
    expect(live).toBeGreaterThan(0);
    expect(live).toBeLessThan(done);
  });

  test("a body from a file (or stdin) with flags over it", async () => {
    const dir = tempDir("bt-h14d-cli-");
    const file = path.join(dir, "job.json");
    fs.writeFileSync(file, JSON.stringify({ type: "script", deploymentId: "from-file", script: FAIL_SCRIPT }));
    const r = await cli(["--json", "submit", file, "--param", `script=${OK_SCRIPT}`]);
    expect(r.code).toBe(0);
    const { job: submitted } = JSON.parse(r.stdout);
    expect(submitted).toMatchObject({ type: "script", deploymentId: "from-file" });
    const fromStdin = await cli(["--json", "submit", "-"], { input: JSON.stringify({ type: "script", deploymentId: "from-stdin", script: OK_SCRIPT }) });
    expect(fromStdin.code).toBe(0);
    expect(JSON.parse(fromStdin.stdout).job.deploymentId).toBe("from-stdin");
    const bad = await cli(["submit", "-"], { input: "{not json" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/stdin is not JSON/);
    // The API's own refusal, with its fields.
    const invalid = await cli(["submit", "--type", "script", "--param", "nope=1"]);
    expect(invalid.code).toBe(6);
    expect(invalid.stderr).toMatch(/422 VALIDATION_FAILED/);
  });
});

describe("the other commands", () => {
  test("list: a table, filters, --json", async () => {
    await waitFor(async () => (await node.http("GET", "/api/jobs?state=failed")).body.items.length >= 1, { message: "a failed job" });
    const all = await cli(["list"]);
    expect(all.code).toBe(0);
    const header = all.stdout.split("\n")[0];
    expect(header).toMatch(/^ID\s+STATE\s+TYPE\s+DEPLOYMENT\s+ATTEMPT\s+BY\s+CREATED$/);
    expect(all.stdout).toMatch(/cli-ok/);
    const failed = await cli(["list", "--state", "failed", "--type", "script"]);
    const rows = failed.stdout.trim().split("\n").slice(1);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    for (const row of rows) expect(row).toMatch(/^job_\S+\s+failed\s+script\s/);
    const json = await cli(["--json", "list", "--deployment", "cli-ok"]);
    const body = JSON.parse(json.stdout);
    expect(body.items.map((j: any) => j.deploymentId)).toEqual(["cli-ok"]);
    expect(json.stderr).toBe("");
  });

  test("cancel a running job, then watch it: exit 4 (cancelled); retry it: watch runs it again", async () => {
    const sub = await cli(["--json", "submit", ...scriptArgs(LONG_SCRIPT, "cli-cancel")]);
    const id = JSON.parse(sub.stdout).job.id as string;
    await waitFor(async () => (await job(id)).job.state === "running", { message: "job running" });
    const cancel = await cli(["cancel", id, "--reason", "from the cli test"]);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toContain(`${id} cancelled`);
    const watch = await cli(["watch", id, "--no-logs"]);
    expect(watch.code).toBe(4);
    expect(watch.stdout).toMatch(/⚠️ cancelled attempt 1 — from the cli test, by admin/);
    const again = await cli(["cancel", id]);
    expect(again.code).toBe(6);
    expect(again.stderr).toMatch(/409 JOB_FINAL/);

    const retry = await cli(["retry", id]);
    expect(retry.code).toBe(0);
    expect(retry.stdout).toContain(`${id} queued`);
    await waitFor(async () => (await job(id)).job.state === "running", { message: "retried job running" });
    await cli(["cancel", id]);
  });

  test("Ctrl-C stops a watch: exit 130, the job goes on", async () => {
    const sub = await cli(["--json", "submit", ...scriptArgs(LONG_SCRIPT, "cli-interrupt")]);
    const id = JSON.parse(sub.stdout).job.id as string;
    const child = spawn(process.execPath, ["--import", TSX, BIN, "watch", id], {
      cwd: ROOT,
      env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...runTmp(), BLACKTREE_URL: node.url, BLACKTREE_API_KEY: TEST_KEYS.admin },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.resume();
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await waitFor(() => /🔄 running/.test(stdout), { timeout: 20_000, message: "watch printed running" });
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    printed.push(stdout);
    expect((await job(id)).job.state).toBe("running");
    expect((await cli(["cancel", id])).code).toBe(0);
  });

  test("retry --watch of a failed job: it runs again and fails again (exit 1)", async () => {
    const sub = await cli(["--json", "submit", ...scriptArgs(FAIL_SCRIPT, "cli-retry"), "--watch", "--no-logs"]);
    expect(sub.code).toBe(1);
    const id = JSON.parse(sub.stdout.split("\n")[0]).job.id;
    const r = await cli(["retry", id, "--watch"]);
    expect(r.code).toBe(1);
    expect((await job(id)).attempts).toHaveLength(2);
    expect(r.stdout).toContain("about to fail");
  });

  test("logs: every attempt's lines; -f follows to the end", async () => {
    const sub = await cli(["--json", "submit", ...scriptArgs(OK_SCRIPT, "cli-logs")]);
    const id = JSON.parse(sub.stdout).job.id;
    const follow = await cli(["logs", id, "-f"]);
    expect(follow.code).toBe(0);
    expect(inOrder(follow.stdout, ["hello from the h14d worker", "second line"])).toBe(true);
    expect((await job(id)).job.state).toBe("succeeded");
    const logs = await cli(["logs", id]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(/── attempt 1 · process · exited\nhello from the h14d worker\nsecond line/);
    const json = await cli(["--json", "logs", id]);
    expect(JSON.parse(json.stdout)).toMatchObject({ jobId: id, attempts: [{ attempt: 1, lines: expect.arrayContaining(["second line"]) }] });
  });

  test("dead-letters: the list, replay, and a letter with nothing to replay", async () => {
    const backend = await BackendClient.connect("bt-h14d-cli", vhost.url);
    try {
      backend.publishJob("{ not json");
      backend.publishJob({ repository: "a/b" });
      await backend.confirmed();
    } finally {
      await backend.close();
    }
    await waitFor(async () => (await node.http("GET", "/api/dead-letters")).body.items.length === 2, { message: "two dead letters" });
    const list = await cli(["dead-letters"]);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n")[0]).toMatch(/^ID\s+RECEIVED\s+REASON\s+SOURCE\s+REPLAYS\s+BODY$/);
    expect(list.stdout).toMatch(/NOT_JSON\s+amqp:execute\.queue\s+0\s+not kept/);
    expect(list.stdout).toMatch(/NO_DEPLOYMENT_ID\s+amqp:execute\.queue\s+0\s+kept/);
    const letters = JSON.parse((await cli(["--json", "dead-letters", "list"])).stdout).items;
    const kept = letters.find((l: any) => l.reason === "NO_DEPLOYMENT_ID");
    const notKept = letters.find((l: any) => l.reason === "NOT_JSON");
    const replay = await cli(["dead-letters", "replay", kept.id]);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain(`replayed ${kept.id} (replays: 1)`);
    const nothing = await cli(["dead-letters", "replay", notKept.id]);
    expect(nothing.code).toBe(6);
    expect(nothing.stderr).toMatch(/409 NOTHING_TO_REPLAY/);
  });
});

describe("errors", () => {
  test("an unknown flag or command names the closest one (exit 2)", async () => {
    const flag = await cli(["list", "--stat", "failed"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/unknown option '--stat'[\s\S]*Did you mean --state\?/);
    const cmd = await cli(["sumbit", "x.json"]);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toMatch(/unknown command 'sumbit'[\s\S]*Did you mean submit\?/);
    const state = await cli(["list", "--state", "done"]);
    expect(state.code).toBe(2);
    expect(state.stderr).toMatch(/Allowed choices are queued, launching/);
  });

  test("401, 403 and 404 say what the API said, and what to do", async () => {
    const wrong = await cli(["list"], { env: { BLACKTREE_API_KEY: "not-a-key-but-long-enough" } });
    expect(wrong.code).toBe(6);
    expect(wrong.stderr).toMatch(/401 UNAUTHORIZED: .*check --key/);
    expect(wrong.stderr).not.toContain("not-a-key-but-long-enough");
    const none = await cli(["list"], { env: { BLACKTREE_API_KEY: "" } });
    expect(none.code).toBe(6);
    expect(none.stderr).toMatch(/401 UNAUTHORIZED: .*no key given/);
    const forbidden = await cli(["dead-letters"], { env: { BLACKTREE_API_KEY: TEST_KEYS.submitter } });
    expect(forbidden.code).toBe(6);
    expect(forbidden.stderr).toMatch(/403 FORBIDDEN: .*role/);
    const missing = await cli(["watch", "job_nope"]);
    expect(missing.code).toBe(6);
    expect(missing.stderr).toMatch(/404 JOB_NOT_FOUND: No job 'job_nope'/);
    const keyFile = path.join(tempDir("bt-h14d-cli-"), "key");
    fs.writeFileSync(keyFile, `${TEST_KEYS.operator}\n`);
    expect((await cli(["--key-file", keyFile, "dead-letters"], { env: { BLACKTREE_API_KEY: "" } })).code).toBe(0);
  });

  test("a node that cannot be reached is exit 7", async () => {
    const port = await freePort();
    const r = await cli(["list"], { url: `http://127.0.0.1:${port}` });
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(new RegExp(`cannot reach http://127.0.0.1:${port}: ECONNREFUSED`));
  });
});

describe("on a terminal", () => {
  test("watch shows a spinner with the state and colours (only there)", async () => {
    const sub = await cli(["--json", "submit", ...scriptArgs(`(async () => { await report("started"); await sleep(2500); console.log("tty done"); })()`, "cli-tty")]);
    const id = JSON.parse(sub.stdout).job.id;
    // `script` gives the CLI a pseudo-terminal, as a user's shell would.
    const command = [process.execPath, "--import", TSX, BIN, "watch", id].map((a) => `'${a}'`).join(" ");
    const child = spawn("script", ["-qec", command, "/dev/null"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...runTmp(), TERM: "xterm", BLACKTREE_URL: node.url, BLACKTREE_API_KEY: TEST_KEYS.admin },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    printed.push(output);
    expect(code).toBe(0);
    expect(output).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏](\u001b\[39m)? job_[0-9a-f]+ running · attempt 1 · \d+ s/);
    expect(output).toMatch(/\u001b\[32msucceeded/);
    expect(output).toContain("tty done");
  });
});

describe("serve", () => {
  test("`blacktree serve` runs the node (as `blacktree` alone does) and stops on SIGTERM", async () => {
    const setup = await prepareEntryPoint();
    const child = spawn(process.execPath, ["--import", TSX, BIN, "serve"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...runTmp(), BLACKTREE_API_KEYS: `admin:admin:${TEST_KEYS.admin}`, ...setup.env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      await setup.healthy();
      const list = await cli(["--json", "list"], { url: setup.url });
      expect(list.code).toBe(0);
      expect(JSON.parse(list.stdout)).toEqual({ items: [], nextCursor: null });
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});

describe("watch through a cut connection", () => {
  test("reconnects with Last-Event-ID: every event once, in order", async () => {
    // A proxy that cuts each event-stream connection after its first event: the CLI must resume after it.
    const cuts: string[] = [];
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(new URL(node.url).port), "127.0.0.1");
      let request = "";
      let events = 0;
      client.on("data", (d) => {
        request += d.toString("latin1");
        upstream.write(d);
      });
      upstream.on("data", (d) => {
        client.write(d);
        if (!request.includes("/events")) return;
        events += (d.toString("utf8").match(/\nevent: job\n/g) ?? []).length;
        if (events >= 1) {
          cuts.push(/last-event-id: (\S+)/i.exec(request)?.[1] ?? "none");
          client.destroy();
          upstream.destroy();
        }
      });
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", () => resolve()));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
      const r = await cli(["--json", "submit", ...scriptArgs(OK_SCRIPT, "cli-cut"), "--watch", "--no-logs"], { url, timeout: 60_000 });
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const id = lines[0].job.id;
      const history = (await job(id)).history.map((e: any) => e.seq);
      expect(lines.filter((l) => l.type === "event").map((l) => l.seq)).toEqual(history);
      expect(cuts.length).toBeGreaterThanOrEqual(2);
      // The first connection starts fresh; each later one resumes where the last cut left it.
      expect(cuts[0]).toBe("none");
      expect(cuts.slice(1).every((c) => c !== "none")).toBe(true);
      expect(r.stderr).toMatch(/🔄 event stream cut: reconnecting/);
    } finally {
      proxy.close();
    }
  });
  test("a node that stays away past --reconnect-timeout: exit 7, naming the stream", async () => {
    const sub = await cli(["--json", "submit", ...scriptArgs(LONG_SCRIPT, "cli-gone")]);
    const id = JSON.parse(sub.stdout).job.id as string;
    const sockets = new Set<net.Socket>();
    // Forwards until the first job event went through, then goes away for good.
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(new URL(node.url).port), "127.0.0.1");
      sockets.add(client).add(upstream);
      client.pipe(upstream);
      upstream.on("data", (d) => {
        client.write(d);
        if (/\nevent: job\n/.test(d.toString("utf8"))) {
          proxy.close();
          for (const s of sockets) s.destroy();
        }
      });
      client.on("error", () => undefined);
      upstream.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", () => resolve()));
    const url = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    const started = Date.now();
    const r = await cli(["--reconnect-timeout", "2", "watch", id, "--no-logs"], { url });
    expect(r.code).toBe(7);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(r.stderr).toMatch(new RegExp(`the event stream /api/jobs/${id}/events stayed cut for 2 s: cannot reach ${url}: ECONNREFUSED`));
    expect((await cli(["cancel", id])).code).toBe(0);
  });
});

describe("keys hash", () => {
  test("the entry for a key from stdin is accepted by a node started with it; the key is never printed", async () => {
    const key = "h14d-ci-key-0123456789abcdef";
    const r = await cli(["keys", "hash", "--name", "ci", "--role", "operator"], { input: `${key}\n`, env: { BLACKTREE_API_KEY_PEPPER: PEPPER } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ci:operator:hmac:[0-9a-f]{64}\n$/);
    expect(r.stdout + r.stderr).not.toContain(key);
    const entry = r.stdout.trim();

    const generated = path.join(tempDir("bt-h14d-cli-"), "alice.key");
    const gen = await cli(["--json", "keys", "hash", "--name", "alice", "--generate", "--out", generated], { env: { BLACKTREE_API_KEY_PEPPER: PEPPER } });
    expect(gen.code).toBe(0);
    const genOut = JSON.parse(gen.stdout);
    expect(genOut).toMatchObject({ name: "alice", role: "submitter", generated: true, keyFile: generated, keysFileLine: expect.stringMatching(/^alice:submitter:[0-9a-f]{64}$/) });
    const aliceKey = fs.readFileSync(generated, "utf8").trim();
    expect(fs.statSync(generated).mode & 0o777).toBe(0o600);
    expect(gen.stdout + gen.stderr).not.toContain(aliceKey);

    const other = await startNode({ env: { BLACKTREE_API_KEYS: `${entry},${genOut.entry}`, BLACKTREE_API_KEY_PEPPER: PEPPER } });
    try {
      const ok = await cli(["dead-letters"], { url: other.url, env: { BLACKTREE_API_KEY: key } });
      expect(ok.code).toBe(0);
      const alice = await cli(["--json", "submit", ...scriptArgs("0", "alice-job")], { url: other.url, env: { BLACKTREE_API_KEY: aliceKey } });
      expect(alice.code).toBe(6); // no script type on this node: but alice got past authentication
      expect(alice.stderr).not.toMatch(/401/);
      const asSubmitter = await cli(["dead-letters"], { url: other.url, env: { BLACKTREE_API_KEY: aliceKey } });
      expect(asSubmitter.stderr).toMatch(/403 FORBIDDEN/);
      const wrongPepper = await cli(["keys", "hash", "--name", "ci", "--role", "operator"], { input: key, env: { BLACKTREE_API_KEY_PEPPER: `${PEPPER}-other` } });
      const refused = await cli(["list"], { url: other.url, env: { BLACKTREE_API_KEY: key.slice(0, -1) + "X" } });
      expect(refused.code).toBe(6);
      expect(wrongPepper.stdout.trim()).not.toBe(entry);
    } finally {
      await other.stop();
    }
  });

  test("the pepper is the node's: from --data-dir; none at all is a clear error", async () => {
    const r = await cli(["keys", "hash"], { input: "", env: { DATA_DIR: tempDir("bt-h14d-cli-") } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no API key pepper: set BLACKTREE_API_KEY_PEPPER .* or pass --data-dir/);
    const fromNode = await cli(["keys", "hash", "--data-dir", node.dataDir, "--name", "x"], { input: "h14d-data-dir-key-0123456789" });
    expect(fromNode.code).toBe(0);
    expect(node.rt.apiKeys.verify("h14d-data-dir-key-0123456789")).toBeNull();
    const hex = fromNode.stdout.trim().split(":")[3];
    expect(node.rt.apiKeys.hash("h14d-data-dir-key-0123456789").toString("hex")).toBe(hex);
    const short = await cli(["keys", "hash", "--data-dir", node.dataDir], { input: "short" });
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/must be at least 16 characters/);
    expect(short.stdout).toBe("");
  });
});

test("across every run above, no API key in use reached the output", () => {
  expect(printed.length).toBeGreaterThan(40);
  const all = printed.join("\n");
  for (const key of Object.values(TEST_KEYS)) expect(all).not.toContain(key);
});
