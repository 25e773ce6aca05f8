import fs from "node:fs";
import path from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { JOB_STATES } from "../jobs/states";
import { ApiClient } from "./client";
import { CliError, EXIT } from "./exit-codes";
import { keysHash } from "./keys";
import { CliIo, Output } from "./output";
import { followStream, NotAStream } from "./sse";
import { pollLogs, watchJob } from "./watch";

export const DEFAULT_URL = "http://127.0.0.1:3000";

interface GlobalOptions {
  url?: string;
  key?: string;
  keyFile?: string;
  json?: boolean;
  color: boolean;
  reconnectTimeout?: number;
}

export interface RunOptions {
  /** Aborted on Ctrl-C: a watch stops and the CLI exits 130. */
  signal?: AbortSignal;
  /** Starts the node (`blacktree serve`); loaded only when asked, so other commands stay light. */
  serve?: () => Promise<void>;
}

/**
 * Runs the `blacktree` CLI on `argv` (without node and script). Resolves to the exit code,
 * or null when the command keeps running on its own (`serve`).
 */
export async function runCli(argv: string[], io: CliIo, run: RunOptions = {}): Promise<number | null> {
  let code: number | null = EXIT.ok;
  let out = new Output(io, argv.includes("--json"), !argv.includes("--no-color"));
  const program = buildProgram(io, run, (c) => (code = c), (o) => (out = o));
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (err) {
    return reportError(out, err);
  }
}

function reportError(out: Output, err: unknown): number {
  out.stopProgress();
  if (err instanceof CommanderError) {
    // Help and --version end here too; usage errors were already printed by commander.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof CliError) {
    out.note(`❌ ${err.message}`);
    for (const d of err.details) out.note(`   - ${d}`);
    return err.exitCode;
  }
  if ((err as Error)?.name === "AbortError") return EXIT.interrupted;
  out.note(`❌ ${(err as Error)?.message ?? String(err)}`);
  return EXIT.failed;
}

function buildProgram(io: CliIo, run: RunOptions, setCode: (code: number | null) => void, setOut: (out: Output) => void): Command {
  const program = new Command("blacktree");
  program
    .description("Blacktree Orchestrator: run a node (serve) or talk to one over its REST API")
    .version(packageVersion(), "-V, --version")
    .option("--url <url>", `gateway URL (env BLACKTREE_URL; default ${DEFAULT_URL})`)
    .option("--key <key>", "API key (env BLACKTREE_API_KEY); prefer the env or --key-file: arguments show in `ps`")
    .option("--key-file <file>", "read the API key from a file (e.g. data/admin.key)")
    .option("--json", "machine-readable output on stdout (progress and messages on stderr)")
    .option("--no-color", "no colours")
    .option("--reconnect-timeout <seconds>", "how long a cut event or log stream is retried before giving up (exit 7)", seconds, 30)
    .showHelpAfterError("(run with --help for usage)")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
      outputError: (s, write) => write(`❌ ${s}`),
    });

  /** The action's context: output, API client (built lazily: `keys hash` needs none). */
  const context = (cmd: Command) => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    const out = new Output(io, g.json === true, g.color !== false);
    setOut(out);
    return {
      out,
      g,
      client: () => new ApiClient(g.url ?? io.env.BLACKTREE_URL ?? DEFAULT_URL, apiKey(g, io)),
      reconnectBudgetMs: (g.reconnectTimeout ?? 30) * 1000,
    };
  };
  const action =
    <A extends unknown[]>(fn: (ctx: ReturnType<typeof context>, ...args: A) => Promise<number | null>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      setCode(await fn(context(cmd), ...(args.slice(0, -1) as A)));
    };

  program
    .command("serve")
    .description("start an orchestrator node (what `npm start` and the container run; also `blacktree` with no command)")
    .action(async () => {
      if (!run.serve) throw new CliError("serve is not available in this build", EXIT.failed);
      await run.serve();
      setCode(null);
    });

  program
    .command("submit")
    .description("submit a job from a JSON file (`-` for stdin) and/or flags")
    .argument("[file]", "JSON body (the DeploymentMessage fields, plus priority, target, timeouts, retry, …)")
    .option("--type <type>", "task type (default build)")
    .option("--deployment-id <id>", "deploymentId")
    .option("--repository <repo>", "repository")
    .option("--branch <branch>", "branch")
    .option("--target <target>", "launch target")
    .option("--priority <n>", "priority", integer)
    .option("--param <key=value>", "any other field, repeatable; key:=<json> for a JSON value (e.g. retry:='{\"maxAttempts\":2}')", collectParam)
    .option("--idempotency-key <key>", "sent as Idempotency-Key: the same key again answers with the same job")
    .option("-w, --watch", "then watch the job to its end (exit code from its final state)")
    .option("--no-logs", "with --watch: no log tail")
    .addHelpText("after", "\nExamples:\n  blacktree submit examples/build-local.json --watch\n  blacktree submit --type build --deployment-id demo --repository owner/repo --param branch=main\n  cat job.json | blacktree submit - --json")
    .action(
      action(async (ctx, file: string | undefined, opts: Record<string, any>) => {
        const body = { ...(file ? readJsonBody(file) : {}), ...fieldsOf(opts) };
        if (Object.keys(body).length === 0) throw new CliError("nothing to submit: give a JSON file (or - for stdin) or fields (--type, --deployment-id, --param key=value)", EXIT.usage);
        const client = ctx.client();
        const headers = opts.idempotencyKey ? { "idempotency-key": String(opts.idempotencyKey) } : undefined;
        const res = await client.request<{ job: JobView; created: boolean }>("POST", "/api/jobs", { body, headers });
        if (ctx.out.json) {
          if (opts.watch) ctx.out.record({ type: "submitted", created: res.created, job: res.job });
          else ctx.out.data(res);
        } else ctx.out.line(`${res.created ? "✅ submitted" : "⚠️ already submitted:"} ${res.job.id} (${res.job.type}${res.job.deploymentId ? `, deployment ${res.job.deploymentId}` : ""}) ${res.job.state}`);
        if (!opts.watch) return EXIT.ok;
        return watchJob(client, ctx.out, res.job.id, { logs: opts.logs !== false, signal: run.signal, reconnectBudgetMs: ctx.reconnectBudgetMs });
      }),
    );

  program
    .command("watch")
    .description("follow a job to its end: each state, the log tail; exit 0 only if it succeeded")
    .argument("<id>", "job id")
    .option("--no-logs", "no log tail")
    .addHelpText("after", `\nExit codes: ${EXIT.ok} succeeded, ${EXIT.failed} failed, ${EXIT.timedOut} timed out, ${EXIT.cancelled} cancelled, ${EXIT.rejected} rejected, ${EXIT.api} refused by the API, ${EXIT.connection} node unreachable / stream cut too long, ${EXIT.usage} usage.`)
    .action(action(async (ctx, id: string, opts: { logs: boolean }) => watchJob(ctx.client(), ctx.out, id, { logs: opts.logs !== false, signal: run.signal, reconnectBudgetMs: ctx.reconnectBudgetMs })));

  program
    .command("logs")
    .description("a job's log, per attempt; -f follows it live until the job ends")
    .argument("<id>", "job id")
    .option("-f, --follow", "follow the log as the worker writes it")
    .action(
      action(async (ctx, id: string, opts: { follow?: boolean }) => {
        const client = ctx.client();
        const route = `/api/jobs/${encodeURIComponent(id)}/logs`;
        if (opts.follow) {
          const print = (attempt: number, line: string) => (ctx.out.json ? ctx.out.record({ attempt, line }) : ctx.out.line(line));
          try {
            await followStream(client, route, (msg) => {
              if (msg.event !== "log") return;
              const { attempt, line } = JSON.parse(msg.data) as { attempt: number; line: string };
              print(attempt, line);
            }, { query: { follow: 1 }, signal: run.signal, reconnectBudgetMs: ctx.reconnectBudgetMs, onReconnect: (n) => ctx.out.note(`🔄 log stream cut: reconnecting (${n})`) });
          } catch (err) {
            // A node without the live log: follow it by polling instead.
            if (!(err instanceof NotAStream)) throw err;
            await pollLogs(client, id, print, run.signal);
          }
          return run.signal?.aborted ? EXIT.interrupted : EXIT.ok;
        }
        const res = await client.request<{ jobId: string; attempts: Array<{ attempt: number; target: string; state: string; lines: string[] }> }>("GET", route);
        if (ctx.out.json) ctx.out.data(res);
        else if (res.attempts.length === 0) ctx.out.note(`${id} has no attempt yet`);
        else
          for (const a of res.attempts) {
            ctx.out.line(ctx.out.colors.dim(`── attempt ${a.attempt} · ${a.target} · ${a.state}`));
            for (const line of a.lines) ctx.out.line(line);
          }
        return EXIT.ok;
      }),
    );

  program
    .command("list")
    .alias("ls")
    .description("jobs, newest first (a submitter key sees its own)")
    .addOption(new Option("--state <state>", "only jobs in this state").choices(JOB_STATES))
    .option("--type <type>", "only this task type")
    .option("--deployment <id>", "only this deploymentId")
    .option("--limit <n>", "at most n jobs (1-500)", integer)
    .option("--cursor <cursor>", "the next page (printed after a full page)")
    .action(
      action(async (ctx, opts: { state?: string; type?: string; deployment?: string; limit?: number; cursor?: string }) => {
        const res = await ctx.client().request<{ items: JobView[]; nextCursor: string | null }>("GET", "/api/jobs", {
          query: { state: opts.state, type: opts.type, deploymentId: opts.deployment, limit: opts.limit, cursor: opts.cursor },
        });
        if (ctx.out.json) {
          ctx.out.data(res);
          return EXIT.ok;
        }
        if (res.items.length === 0) ctx.out.note("no jobs");
        ctx.out.table(
          ["ID", "STATE", "TYPE", "DEPLOYMENT", "ATTEMPT", "BY", "CREATED"],
          res.items.map((j) => [j.id, paintState(ctx.out, j.state), j.type, j.deploymentId ?? "-", String(j.attempt), j.submittedBy ?? "-", j.createdAt.replace("T", " ").slice(0, 19)]),
        );
        if (res.nextCursor) ctx.out.note(`more: blacktree list --cursor ${res.nextCursor}`);
        return EXIT.ok;
      }),
    );

  program
    .command("cancel")
    .description("cancel a queued or running job (operator)")
    .argument("<id>", "job id")
    .option("--reason <text>", "recorded in the job's history")
    .action(
      action(async (ctx, id: string, opts: { reason?: string }) => {
        const res = await ctx.client().request<{ job: JobView }>("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`, { body: opts.reason ? { reason: opts.reason } : {} });
        if (ctx.out.json) ctx.out.data(res);
        else ctx.out.line(`✅ ${res.job.id} ${res.job.state}`);
        return EXIT.ok;
      }),
    );

  program
    .command("retry")
    .description("run a failed, timed-out or cancelled job again as a new attempt (operator)")
    .argument("<id>", "job id")
    .option("-w, --watch", "then watch it to its end")
    .option("--no-logs", "with --watch: no log tail")
    .action(
      action(async (ctx, id: string, opts: { watch?: boolean; logs: boolean }) => {
        const client = ctx.client();
        const res = await client.request<{ job: JobView }>("POST", `/api/jobs/${encodeURIComponent(id)}/retry`, { body: {} });
        if (ctx.out.json) {
          if (opts.watch) ctx.out.record({ type: "retried", job: res.job });
          else ctx.out.data(res);
        } else ctx.out.line(`✅ ${res.job.id} ${res.job.state} (attempt ${res.job.attempt + 1} next)`);
        if (!opts.watch) return EXIT.ok;
        return watchJob(client, ctx.out, res.job.id, { logs: opts.logs !== false, signal: run.signal, reconnectBudgetMs: ctx.reconnectBudgetMs });
      }),
    );

  const deadLetters = program.command("dead-letters").description("messages from execute.queue that could not become a job (operator)");
  deadLetters
    .command("list", { isDefault: true })
    .description("the dead letters, newest first (the default)")
    .option("--limit <n>", "at most n (1-500)", integer)
    .action(
      action(async (ctx, opts: { limit?: number }) => {
        const res = await ctx.client().request<{ items: DeadLetterView[] }>("GET", "/api/dead-letters", { query: { limit: opts.limit } });
        if (ctx.out.json) {
          ctx.out.data(res);
          return EXIT.ok;
        }
        if (res.items.length === 0) ctx.out.note("no dead letters");
        ctx.out.table(
          ["ID", "RECEIVED", "REASON", "SOURCE", "REPLAYS", "BODY"],
          res.items.map((l) => [l.id, (l.receivedAt ?? "").replace("T", " ").slice(0, 19), l.reason, l.source, String(l.replayCount ?? 0), l.body === null ? "not kept" : "kept"]),
        );
        return EXIT.ok;
      }),
    );
  deadLetters
    .command("replay")
    .description("publish a dead letter's stored body to execute.queue again")
    .argument("<id>", "dead letter id")
    .action(
      action(async (ctx, id: string) => {
        const res = await ctx.client().request<{ deadLetter: DeadLetterView }>("POST", `/api/dead-letters/${encodeURIComponent(id)}/replay`, { body: {} });
        if (ctx.out.json) ctx.out.data(res);
        else ctx.out.line(`✅ replayed ${res.deadLetter.id} (replays: ${res.deadLetter.replayCount})`);
        return EXIT.ok;
      }),
    );

  const keys = program.command("keys").description("API key tools");
  keys
    .command("hash")
    .description("print the BLACKTREE_API_KEYS entry (name:role:hmac:<hash>) for a key read from stdin, or for a new one")
    .option("--name <name>", "the key's name (recorded as submittedBy)", "cli")
    .addOption(new Option("--role <role>", "the key's role").choices(["submitter", "operator", "admin"]).default("submitter"))
    .option("--data-dir <dir>", "the node's DATA_DIR, whose api-keys.pepper hashes keys (when BLACKTREE_API_KEY_PEPPER is not set; default $DATA_DIR or ./data)")
    .option("--generate", "make a new key even if stdin has one")
    .option("--out <file>", "write a generated key to this file (0600) instead of stderr")
    .addHelpText("after", "\nExamples:\n  openssl rand -base64 24 | tee ci.key | blacktree keys hash --name ci --role operator\n  blacktree keys hash --name alice --out alice.key   # generates the key")
    .action(action(async (ctx, opts: { name: string; role: string; dataDir?: string; generate?: boolean; out?: string }) => keysHash(io, ctx.out, opts)));

  return program;
}

interface JobView {
  id: string;
  type: string;
  state: string;
  deploymentId: string | null;
  attempt: number;
  submittedBy: string | null;
  createdAt: string;
}

interface DeadLetterView {
  id: string;
  reason: string;
  source: string;
  replayCount?: number;
  receivedAt: string | null;
  body: unknown;
}

function paintState(out: Output, state: string): string {
  const c = out.colors;
  if (state === "succeeded") return c.green(state);
  if (["failed", "timed_out", "rejected"].includes(state)) return c.red(state);
  if (state === "cancelled" || state === "retrying") return c.yellow(state);
  return c.cyan(state);
}

/** The key from --key, --key-file or BLACKTREE_API_KEY (null: requests go without one and get a clear 401). */
function apiKey(g: GlobalOptions, io: CliIo): string | null {
  if (g.key) return g.key;
  if (g.keyFile) {
    try {
      return fs.readFileSync(g.keyFile, "utf8").trim();
    } catch (err) {
      throw new CliError(`cannot read --key-file ${g.keyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
    }
  }
  return io.env.BLACKTREE_API_KEY || null;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("must be a number of seconds above 0");
  return n;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("must be a whole number");
  return n;
}

/** `--param key=value` (a string) or `key:=json` (any JSON value), collected into one object. */
function collectParam(value: string, acc: Record<string, unknown> = {}): Record<string, unknown> {
  const json = /^([^=:]+):=(.*)$/s.exec(value);
  if (json) {
    try {
      return { ...acc, [json[1]]: JSON.parse(json[2]) };
    } catch {
      throw new InvalidArgumentError(`'${json[1]}:=' needs a JSON value`);
    }
  }
  const plain = /^([^=]+)=(.*)$/s.exec(value);
  if (!plain) throw new InvalidArgumentError("must be key=value or key:=<json>");
  return { ...acc, [plain[1]]: plain[2] };
}

/** The job fields given as flags (they win over the file's). */
function fieldsOf(opts: Record<string, any>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...opts.param };
  if (opts.type !== undefined) out.type = opts.type;
  if (opts.deploymentId !== undefined) out.deploymentId = opts.deploymentId;
  if (opts.repository !== undefined) out.repository = opts.repository;
  if (opts.branch !== undefined) out.branch = opts.branch;
  if (opts.target !== undefined) out.target = opts.target;
  if (opts.priority !== undefined) out.priority = opts.priority;
  return out;
}

function readJsonBody(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = file === "-" ? fs.readFileSync(0, "utf8") : fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(`cannot read ${file === "-" ? "stdin" : file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${file === "-" ? "stdin" : file} is not JSON: ${(err as Error).message}`, EXIT.usage);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new CliError(`${file === "-" ? "stdin" : file} must hold one JSON object (a job)`, EXIT.usage);
  return body as Record<string, unknown>;
}

/** This package's version (package.json sits above lib/ in the source and above dist/ once built). */
function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "blacktree-orchestrator") return pkg.version ?? "0.0.0";
    } catch {
      // not here: one level up
    }
    if (path.dirname(dir) === dir) return "0.0.0";
  }
}
