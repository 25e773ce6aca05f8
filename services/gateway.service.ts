import http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, Service, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import type { Caller } from "../lib/auth/api-keys";
import { callerOf, presentedKey } from "../lib/auth/credentials";
import type { StreamGrant } from "../lib/auth/stream-token";
import { redactTokenInUrl } from "../lib/auth/stream-token";
import type { WorkerCall } from "../lib/engine/callbacks";
import { roleAllows } from "../lib/auth/roles";
import { blacktreeError, describeError } from "../lib/errors";
import { brokerCluster } from "../lib/cluster";
import { redisRateStore } from "../lib/gateway/redis-rate-store";
import { FailureLimit } from "../lib/gateway/failure-limit";
import { openApiDocument, orchestratorVersion } from "../lib/gateway/openapi";
import { accessOf, aliasesOf, routeOf } from "../lib/gateway/routes";
import { dashboardDir, setDashboardHeaders } from "../lib/gateway/dashboard";
import { jobStats } from "../lib/jobs/stats";
import type { EventFilter, StreamDeps } from "../lib/gateway/event-stream";
import { DEFAULT_STREAM_SETTINGS, EventTail, parseEventPosition, SseConnection, streamAllEvents, streamJobEvents } from "../lib/gateway/event-stream";
import { followJobLogs, LogWatch, parseLogPosition } from "../lib/gateway/log-follow";
import { isForbiddenKey, MAX_JSON_DEPTH, tooDeepPath } from "../lib/jobs/json-shape";
import type { Job } from "../lib/jobs/model";
import { attemptView, eventView, jobView } from "../lib/jobs/model";
import { isJobState } from "../lib/jobs/states";
import { whyWaiting } from "../lib/jobs/waiting";
import { aggregateMetrics, bindMetricsStore, metricsRegistry } from "../lib/metrics";
import type { TargetHandle } from "../lib/plugins/sdk";
import { readinessChecks } from "../lib/readiness";
import type { Runtime } from "../lib/runtime";
import type { JobFilter } from "../lib/store/job-store";
import { STORE_CHANGED_EVENT } from "./changes.service";
import { targetServiceName } from "./target-host.service";

type Req = IncomingMessage & { $params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown; $ctx?: Context; $caller?: Caller | null; $worker?: WorkerCall; $grant?: StreamGrant; $streaming?: boolean; $route?: any; originalUrl?: string };
/** What a stream route's action receives besides its params (moleculer-web's passReqResToParams). */
type Raw = { $req: Req; $res: Res };
type Next = (err?: unknown) => void;
type Res = ServerResponse;
type CallerMeta = { caller: Caller };
const SERVICE = "gateway";

/** REST under /api, worker callbacks under /api/worker, /health and /metrics. Only declared aliases are routed. */
export function gatewayService(rt: Runtime): ServiceSchema {
  // Every body is JSON whatever its Content-Type (`curl -d @job.json` sends it as a form), and
  // read only once the credential is checked: the parser runs after `authenticate…` below.
  const parseJson = ApiGateway.bodyParser.json({ strict: false, limit: "256kb", type: () => true });
  /** GET /api/openapi.json, built on first request. */
  let openApi: Record<string, unknown> | null = null;
  // Per API key (or worker launch), after the credential is verified: never X-Forwarded-For, which any client can set.
  const sharedLimit = rt.env.redisUrl ? redisRateStore(rt.env.redisUrl, `blacktree:${rt.env.namespace}:ratelimit`) : null;
  const rateLimit = {
    window: rt.env.rateLimitWindowMs,
    limit: rt.env.rateLimit,
    headers: true,
    // With REDIS_URL every gateway of a cluster counts against one limit per key.
    ...(sharedLimit ? { StoreFactory: sharedLimit.StoreFactory } : {}),
    key: (req: Req) => {
      if (req.$worker) return `worker:${req.$worker.key}`;
      if (req.$grant) return `key:${req.$grant.caller.name}`;
      const caller = callerOf(req, rt.apiKeys);
      return caller ? `key:${caller.name}` : null;
    },
  };
  // Failed authentication, per client address (the socket's, never a header): over the limit,
  // every request from that address is refused until the window ends, valid keys too, so
  // keys cannot be guessed at any speed.
  const failures = new FailureLimit(rt.env.authFailureLimit, rt.env.rateLimitWindowMs);
  const addressOf = (req: Req) => req.socket.remoteAddress ?? "unknown";
  const tooManyFailures = (req: Req) =>
    failures.blocked(addressOf(req)) ? blacktreeError("RATE_LIMITED", "Too many failed authentications from this address", { resetAt: failures.resetAt }) : null;
  const failed = (req: Req, err: unknown) => {
    failures.record(addressOf(req));
    return err;
  };
  /** /api: a valid API key before anything else (the body included); CORS preflights carry none. */
  const authenticateApiKey = (req: Req, _res: Res, next: Next) => {
    if (req.method === "OPTIONS") return next();
    const blocked = tooManyFailures(req);
    if (blocked) return next(blocked);
    // A stream token (`?token=`) instead of a key: checked here, its scope and route in authorizeApiKey.
    const token = req.query?.token;
    if (!presentedKey(req) && typeof token === "string") {
      const grant = rt.streamTokens.verify(token);
      if (!grant) return next(failed(req, blacktreeError("UNAUTHORIZED", "The stream token is invalid or expired; ask POST /api/stream-tokens for a new one")));
      req.$grant = grant;
      return next();
    }
    if (!callerOf(req, rt.apiKeys)) return next(failed(req, blacktreeError("UNAUTHORIZED", "A valid API key is required (Authorization: Bearer <key> or X-API-Key)")));
    next();
  };
  /** /api/worker: a valid callback token before anything else. */
  const authenticateWorker = (req: Req, _res: Res, next: Next) => {
    const blocked = tooManyFailures(req);
    if (blocked) return next(blocked);
    const header = req.headers.authorization ?? "";
    const token = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
    const claims = token ? rt.callbackTokens.verify(token) : null;
    if (!claims) return next(failed(req, blacktreeError("UNAUTHORIZED", "A valid worker token is required")));
    req.$worker = { jobId: claims.jobId, attempt: claims.attempt, key: claims.key };
    next();
  };
  // Exact origins only (moleculer-web's string check would match substrings); none configured = no CORS.
  const origins = new Set(rt.env.corsOrigins);
  const cors = origins.size
    ? { origin: (origin: string) => origins.has(origin), methods: ["GET", "POST"], allowedHeaders: ["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "Last-Event-ID"], maxAge: 600 }
    : false;
  // The dashboard at `/`: static files only (built by `npm run build`), served when no route matched.
  const webDir = dashboardDir();
  const streams: StreamDeps = {
    store: rt.store,
    settings: { ...DEFAULT_STREAM_SETTINGS, heartbeatMs: rt.env.streamHeartbeatMs, maxBufferBytes: rt.env.streamBufferBytes, pollMs: rt.env.streamPollMs, replayLimit: rt.env.streamReplayLimit },
    tail: null as unknown as EventTail,
  };
  const openStreams = new Set<SseConnection>();
  let logWatch: LogWatch | null = null;
  /** Starts an SSE response on a stream route's raw response; the action returns at once, the stream runs on. */
  const openStream = (raw: Raw, kind: "job" | "events" | "logs") => {
    raw.$req.$streaming = true;
    const sink = new SseConnection(raw.$res, kind, streams.settings);
    openStreams.add(sink);
    sink.onClose(() => openStreams.delete(sink));
    return sink;
  };
  return {
    name: SERVICE,
    mixins: [ApiGateway],
    settings: {
      // The server is ours (created, listened on and closed below): moleculer-web's own listen
      // never settles when the port is taken, which left a node running without a gateway.
      server: false,
      port: rt.env.port,
      ip: rt.env.host,
      // Request paths only: bodies and responses may carry job fields.
      logRequest: "info",
      logRequestParams: null,
      logResponse: "debug",
      logResponseData: null,
      routes: [
        {
          path: "/api/worker",
          mappingPolicy: "restrict",
          authorization: true,
          bodyParsers: false,
          use: [authenticateWorker, parseJson],
          rateLimit,
          aliases: aliasesOf("/api/worker", SERVICE),
          onError: writeError,
        },
        {
          path: "/api",
          mappingPolicy: "restrict",
          bodyParsers: false,
          use: [authenticateApiKey, parseJson],
          authorization: "authorizeApiKey",
          rateLimit,
          cors,
          aliases: aliasesOf("/api", SERVICE),
          onBeforeCall(ctx: Context<any, any>, _route: unknown, req: Req) {
            // The body exactly as sent (moleculer-web merges it with query and path params).
            ctx.meta.body = req.body;
            const key = req.headers["idempotency-key"];
            ctx.meta.idempotencyKey = typeof key === "string" ? key : null;
            // A submitter's own trace (W3C Trace Context): the job's trace joins it.
            const traceparent = req.headers.traceparent;
            ctx.meta.traceparent = typeof traceparent === "string" ? traceparent : null;
          },
          onError: writeError,
        },
        {
          path: "/",
          mappingPolicy: "restrict",
          bodyParsers: false,
          authorization: "authorizeApiKey",
          rateLimit,
          aliases: aliasesOf("/", SERVICE),
          onError: writeError,
        },
      ],
      onError: writeError,
      ...(webDir ? { assets: { folder: webDir, options: { index: "index.html", dotfiles: "ignore", setHeaders: setDashboardHeaders } } } : {}),
    },
    actions: {
      submitJob: {
        visibility: "published",
        async handler(ctx: Context<unknown, CallerMeta & { body: unknown; idempotencyKey: string | null; traceparent: string | null; $statusCode?: number }>) {
          const { caller } = ctx.meta;
          const result = await ctx.call<{ created: boolean; job: { submittedBy: string | null } }, unknown>("intake.submit", { body: ctx.meta.body, source: "rest", idempotencyKey: ctx.meta.idempotencyKey, caller, traceparent: ctx.meta.traceparent });
          // A submitter reusing another caller's job key learns nothing about that job.
          if (!result.created && !canSee(caller, result.job)) throw blacktreeError("JOB_KEY_CONFLICT", "This job key belongs to another caller's job; use another idempotency key");
          ctx.meta.$statusCode = result.created ? 202 : 200;
          return result;
        },
      },
      getJob: {
        visibility: "published",
        params: { id: "string" },
        async handler(ctx: Context<{ id: string }, CallerMeta>) {
          const job = await rt.store.getJob(ctx.params.id);
          if (!job || !canSee(ctx.meta.caller, job)) throw blacktreeError("JOB_NOT_FOUND", `No job '${ctx.params.id}'`);
          const [attempts, events, waiting] = await Promise.all([rt.store.getAttempts(job.id), rt.store.getEvents(job.id), whyWaiting(rt.store, job, rt.config.limits, Date.now())]);
          return { job: jobView(job), attempts: attempts.map(attemptView), history: events.map(eventView), ...(waiting ? { waiting } : {}) };
        },
      },
      jobEvents: {
        visibility: "published",
        params: { id: "string" },
        async handler(this: Service, ctx: Context<{ id: string } & Raw, CallerMeta>) {
          const job = await rt.store.getJob(ctx.params.id);
          if (!job || !canSee(ctx.meta.caller, job)) throw blacktreeError("JOB_NOT_FOUND", `No job '${ctx.params.id}'`);
          const after = resumePoint(ctx.params.$req);
          // The tail runs before the answer starts: a client that has the headers is subscribed.
          await streams.tail.ready();
          const sink = openStream(ctx.params, "job");
          streamJobEvents(streams, job.id, after, sink).catch((err) => this.logger.warn(`⚠️ job event stream of ${job.id} stopped: ${describeError(err).message}`));
          return null;
        },
      },
      events: {
        visibility: "published",
        async handler(this: Service, ctx: Context<Record<string, unknown> & Raw, CallerMeta>) {
          const q = ctx.params.$req.query ?? {};
          const filter: EventFilter = {};
          if (q.state !== undefined) {
            if (!isJobState(q.state)) throw blacktreeError("VALIDATION_FAILED", "Unknown state", { fields: [{ field: "state", message: "is not a job state" }] });
            filter.state = q.state;
          }
          if (typeof q.type === "string") filter.type = q.type;
          if (typeof q.deploymentId === "string") filter.deploymentId = q.deploymentId;
          const after = resumePoint(ctx.params.$req);
          await streams.tail.ready();
          const sink = openStream(ctx.params, "events");
          streamAllEvents(streams, filter, after, sink).catch((err) => this.logger.warn(`⚠️ event stream stopped: ${describeError(err).message}`));
          return null;
        },
      },
      createStreamToken: {
        visibility: "published",
        async handler(ctx: Context<unknown, CallerMeta & { body: unknown }>) {
          const { caller } = ctx.meta;
          const body = (ctx.meta.body ?? {}) as Record<string, unknown>;
          const known = ["jobId", "scope"];
          const unknown = typeof body === "object" && body !== null ? Object.keys(body).filter((k) => !known.includes(k)) : [];
          if (typeof body !== "object" || body === null || Array.isArray(body) || unknown.length) {
            throw blacktreeError("VALIDATION_FAILED", "The body is {\"jobId\":\"…\"} or {\"scope\":\"events\"}", { fields: (unknown.length ? unknown : ["body"]).map((field) => ({ field, message: "is not a field of a stream token request" })) });
          }
          let issued;
          if (typeof body.jobId === "string" && body.scope === undefined) {
            const job = await rt.store.getJob(body.jobId);
            if (!job || !canSee(caller, job)) throw blacktreeError("JOB_NOT_FOUND", `No job '${body.jobId}'`);
            issued = rt.streamTokens.issue({ kind: "job", jobId: job.id }, caller);
          } else if (body.scope === "events" && body.jobId === undefined) {
            if (!roleAllows(caller.role, "operator")) throw blacktreeError("FORBIDDEN", "The event stream of all jobs needs the operator role");
            issued = rt.streamTokens.issue({ kind: "events" }, caller);
          } else {
            throw blacktreeError("VALIDATION_FAILED", "Give either jobId (a job's streams) or scope \"events\" (the operator stream)", { fields: [{ field: body.jobId !== undefined ? "jobId" : "scope", message: "must be a job id, or scope must be \"events\"" }] });
          }
          return { token: issued.token, expiresAt: new Date(issued.expiresAt).toISOString() };
        },
      },
      listJobs: {
        visibility: "published",
        async handler(ctx: Context<Record<string, unknown>, CallerMeta>) {
          const q = ctx.params;
          const filter: JobFilter = {};
          // Submitters list their own jobs only.
          if (ctx.meta.caller.role === "submitter") filter.submittedBy = ctx.meta.caller.name;
          if (q.state !== undefined) {
            if (!isJobState(q.state)) throw blacktreeError("VALIDATION_FAILED", "Unknown state", { fields: [{ field: "state", message: "is not a job state" }] });
            filter.state = q.state;
          }
          if (typeof q.type === "string") filter.type = q.type;
          if (typeof q.deploymentId === "string") filter.deploymentId = q.deploymentId;
          if (typeof q.submittedBy === "string" && ctx.meta.caller.role !== "submitter") filter.submittedBy = q.submittedBy;
          if (typeof q.cursor === "string") filter.cursor = q.cursor;
          if (q.limit !== undefined) {
            const n = Number(q.limit);
            if (!Number.isInteger(n) || n < 1 || n > 500) throw blacktreeError("VALIDATION_FAILED", "Bad limit", { fields: [{ field: "limit", message: "must be a whole number from 1 to 500" }] });
            filter.limit = n;
          }
          const page = await rt.store.listJobs(filter);
          return { items: page.items.map(jobView), nextCursor: page.nextCursor };
        },
      },
      /** The caller's key name and role: the dashboard shows the buttons the role may use. */
      whoami: {
        visibility: "published",
        handler(ctx: Context<unknown, CallerMeta>) {
          return { name: ctx.meta.caller.name, role: ctx.meta.caller.role };
        },
      },
      /** Finished jobs and their durations per minute over the last hour (a submitter's own jobs). */
      jobStats: {
        visibility: "published",
        async handler(ctx: Context<Record<string, unknown>, CallerMeta>) {
          const q = ctx.params;
          return jobStats(rt.store, {
            ...(ctx.meta.caller.role === "submitter" ? { submittedBy: ctx.meta.caller.name } : {}),
            ...(typeof q.type === "string" ? { type: q.type } : {}),
            ...(typeof q.deploymentId === "string" ? { deploymentId: q.deploymentId } : {}),
          });
        },
      },
      cancelJob: {
        visibility: "published",
        params: { id: "string" },
        async handler(ctx: Context<{ id: string }, CallerMeta & { body: unknown }>) {
          const body = ctx.meta.body as { reason?: unknown } | undefined;
          const reason = typeof body?.reason === "string" ? body.reason.slice(0, 500) : "cancelled through the REST API";
          // The history records which key asked.
          return { job: await ctx.call("lifecycle.cancel", { id: ctx.params.id, reason, by: ctx.meta.caller.name }) };
        },
      },
      retryJob: {
        visibility: "published",
        params: { id: "string" },
        async handler(ctx: Context<{ id: string }, CallerMeta>) {
          return { job: await ctx.call("lifecycle.retry", { id: ctx.params.id, by: ctx.meta.caller.name }) };
        },
      },
      jobLogs: {
        visibility: "published",
        params: { id: "string" },
        async handler(this: Service, ctx: Context<{ id: string; follow?: unknown } & Raw, CallerMeta>) {
          const job = await rt.store.getJob(ctx.params.id);
          if (!job || !canSee(ctx.meta.caller, job)) throw blacktreeError("JOB_NOT_FOUND", `No job '${ctx.params.id}'`);
          const follow = ctx.params.follow === "1" || ctx.params.follow === "true";
          // A stream token opens the stream (follow=1), not the JSON answer.
          if (!follow && ctx.params.$req.$grant) throw blacktreeError("UNAUTHORIZED", "A stream token is accepted by the stream routes only (here: follow=1); use an API key");
          if (follow) {
            const header = ctx.params.$req.headers["last-event-id"];
            const after = parseLogPosition(typeof header === "string" && header !== "" ? header : ctx.params.$req.query?.lastEventId);
            if (after === "invalid") throw blacktreeError("VALIDATION_FAILED", "Last-Event-ID must be a log position of this stream", { fields: [{ field: "Last-Event-ID", message: "must be <attempt>:<line>" }] });
            await streams.tail.ready();
            const sink = openStream(ctx.params, "logs");
            followJobLogs({ store: rt.store, watch: logWatch! }, job.id, after, sink).catch((err) => {
              this.logger.warn(`⚠️ log stream of ${job.id} stopped: ${describeError(err).message}`);
              sink.cut("store unavailable");
            });
            return null;
          }
          const attempts = await rt.store.getAttempts(job.id);
          const out = [];
          for (const a of attempts) {
            let lines = a.log !== null ? a.log.split("\n") : null;
            if (lines === null && a.handle) {
              try {
                lines = ((await ctx.call(`${targetServiceName(a.target)}.logs`, { handle: a.handle as TargetHandle })) as { lines: string[] }).lines;
              } catch (err) {
                lines = [`(log unavailable: ${describeError(err).message})`];
              }
            }
            out.push({ attempt: a.attempt, target: a.target, state: a.state, lines: lines ?? [] });
          }
          return { jobId: job.id, attempts: out };
        },
      },
      deadLetters: {
        visibility: "published",
        async handler(ctx: Context<Record<string, unknown>>) {
          const n = ctx.params.limit === undefined ? undefined : Number(ctx.params.limit);
          if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > 500)) throw blacktreeError("VALIDATION_FAILED", "Bad limit", { fields: [{ field: "limit", message: "must be a whole number from 1 to 500" }] });
          return ctx.call("intake.deadLetters", { limit: n });
        },
      },
      replayDeadLetter: {
        visibility: "published",
        params: { id: "string" },
        async handler(ctx: Context<{ id: string }>) {
          return ctx.call("intake.replayDeadLetter", { id: ctx.params.id });
        },
      },
      plugins: {
        visibility: "published",
        handler() {
          return rt.registry.describe();
        },
      },
      openApi: {
        visibility: "published",
        handler() {
          // The loaded plugins do not change while the node runs: built once.
          openApi ??= openApiDocument(rt.registry, { version: orchestratorVersion(), serverUrl: rt.env.publicUrl });
          return openApi;
        },
      },
      health: {
        visibility: "published",
        async handler(this: any, ctx: Context<unknown, { $statusCode?: number }>) {
          const checks: Record<string, { ok: boolean; error?: string }> = {};
          try {
            await rt.store.ping();
            checks.store = { ok: true };
          } catch (err) {
            checks.store = { ok: false, error: describeError(err).message };
          }
          checks.broker = { ok: this.broker.started === true || this.broker.started === undefined };
          // RabbitMQ connections and the Redis sink of this node, when configured.
          Object.assign(checks, readinessChecks());
          const ok = Object.values(checks).every((c) => c.ok);
          if (!ok) ctx.meta.$statusCode = 503;
          return { status: ok ? "ok" : "unavailable", node: this.broker.nodeID, checks };
        },
      },
      metrics: {
        visibility: "published",
        async handler(this: Service, ctx: Context<unknown, { $responseType?: string }>) {
          ctx.meta.$responseType = metricsRegistry.contentType;
          if (!rt.env.transporter) return metricsRegistry.metrics();
          // A cluster's metrics, summed over the orchestrator nodes that answer now.
          const nodes = brokerCluster(this.broker).nodesWithService("changes");
          const parts = await Promise.all(nodes.map((nodeID: string) => ctx.call<object[], object>("changes.metrics", {}, { nodeID, timeout: 5000 }).catch(() => null)));
          return aggregateMetrics(parts.filter((p): p is object[] => p !== null));
        },
      },
      workerStarted: workerAction(rt, "started", "lifecycle.workerStarted"),
      workerHeartbeat: workerAction(rt, "heartbeat", "lifecycle.workerHeartbeat"),
      workerResult: workerAction(rt, "result", "lifecycle.workerResult", (params) => ({ result: sanitizeResult(params) })),
      workerSecrets: workerAction(rt, "secrets", "lifecycle.workerSecrets"),
      workerLog: workerAction(
        rt,
        "log",
        "lifecycle.workerLog",
        (params) => ({ lines: Array.isArray(params.lines) ? params.lines.filter((l): l is string => typeof l === "string").slice(0, 1000).map((l) => l.slice(0, 4096)) : [] }),
        // Followers on this node read the new lines now (on other nodes at their next poll).
        (worker) => logWatch?.kick(worker.jobId),
      ),
    },
    methods: {
      /** API routes: a valid key (401 without), a role the route table allows (403 otherwise); /health is open. */
      authorizeApiKey(ctx: Context<unknown, { caller?: Caller }>, _route: unknown, req: Req, _res: Res, alias: { action?: string }) {
        const access = accessOf(alias.action, SERVICE);
        if (access === "public") return;
        if (req.$grant) {
          // A stream token opens the stream routes of its scope (and its one job), nothing else.
          const route = routeOf(alias.action, SERVICE);
          if (!route?.streamToken) throw blacktreeError("UNAUTHORIZED", "A stream token is accepted by the stream routes only; use an API key (Authorization header)");
          const { scope, caller } = req.$grant;
          if (route.streamToken !== scope.kind || (scope.kind === "job" && req.$params?.id !== scope.jobId)) throw blacktreeError("FORBIDDEN", "This stream token is for another stream");
          if (access === "worker" || !roleAllows(caller.role, access)) throw blacktreeError("FORBIDDEN", `This route needs the ${access} role`);
          ctx.meta.caller = caller;
          return;
        }
        const blocked = tooManyFailures(req);
        if (blocked) throw blocked;
        const caller = callerOf(req, rt.apiKeys);
        if (!caller) throw failed(req, blacktreeError("UNAUTHORIZED", "A valid API key is required (Authorization: Bearer <key> or X-API-Key)"));
        if (access === "worker" || !roleAllows(caller.role, access)) throw blacktreeError("FORBIDDEN", `This route needs the ${access} role`);
        ctx.meta.caller = caller;
        // A transporter would serialize the body recursively: refuse deep nesting before any call.
        const deep = tooDeepPath(req.body);
        if (deep !== null) throw blacktreeError("VALIDATION_FAILED", `${deep} is nested deeper than ${MAX_JSON_DEPTH} levels`, { fields: [{ field: deep, message: `is nested deeper than ${MAX_JSON_DEPTH} levels` }] });
      },
      /** A stream route answered on its raw response already: nothing more to send. */
      sendResponse(this: any, req: Req, res: Res, data: unknown, action: unknown) {
        if (req.$streaming) return;
        return (ApiGateway as any).methods.sendResponse.call(this, req, res, data, action);
      },
      /** Worker routes take only a callback token scoped to one launch of a live job attempt (checked by `authenticateWorker`). */
      authorize(ctx: Context<unknown, { worker?: unknown; traceparent?: string }>, _route: unknown, req: Req) {
        if (!req.$worker) throw blacktreeError("UNAUTHORIZED", "A valid worker token is required");
        ctx.meta.worker = req.$worker;
        const traceparent = req.headers.traceparent;
        if (typeof traceparent === "string") ctx.meta.traceparent = traceparent;
      },
    },
    events: {
      // Another node committed: the shared tail reads on (this node's own commits wake it through the store).
      [STORE_CHANGED_EVENT]() {
        streams.tail.wake();
      },
    },
    created(this: any) {
      bindMetricsStore(rt.store);
      if (!webDir) this.logger.warn("⚠️ the dashboard is not built (dist/web): `npm run build` builds it; the API works without it");
      streams.tail = new EventTail(rt.store, streams.settings, (err) => this.logger.warn(`⚠️ event tail: ${describeError(err).message}`));
      logWatch = new LogWatch(streams.settings.pollMs);
      // A job's events (a state change, the end) wake its log followers too.
      const watch = logWatch;
      streams.tail.subscribe({ needsMeta: false, accepts: (e) => watch.has(e.jobId), deliver: (e) => watch.kick(e.jobId) });
      // moleculer-web logs `originalUrl`: set it without the stream token (the query is parsed from `url`).
      this.server = http.createServer((req: Req, res: Res) => {
        req.originalUrl = redactTokenInUrl(req.url ?? "/");
        this.httpHandler(req, res);
      });
      this.isHTTPS = false;
    },
    /** Listens, or fails start-up with the reason (a port in use, a bad address): the broker then stops every service. */
    started(this: any) {
      const server: http.Server = this.server;
      return new Promise<void>((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException) => {
          server.off("listening", onListening);
          const what = `port ${rt.env.port} on ${rt.env.host}`;
          const message = err.code === "EADDRINUSE" ? `${what} is already in use` : err.code === "EADDRNOTAVAIL" ? `${what}: the address is not on this machine` : `${what}: ${err.message}`;
          reject(blacktreeError("CONFIG_INVALID", `The gateway cannot listen: ${message} (${err.code ?? "error"})`, { fields: [{ field: "PORT", message }] }));
        };
        const onListening = () => {
          server.off("error", onError);
          server.on("error", (err) => this.logger.error(`❌ gateway server error: ${err.message}`));
          const addr = server.address();
          this.logger.info(`✅ API Gateway listening on http://${rt.env.host}:${typeof addr === "object" && addr ? addr.port : rt.env.port}`);
          resolve();
        };
        server.once("error", onError);
        server.once("listening", onListening);
        server.listen(rt.env.port, rt.env.host);
      });
    },
    stopped(this: any) {
      sharedLimit?.close();
      streams.tail.stop();
      logWatch?.stop();
      // Open streams would hold the server open; their clients resume with Last-Event-ID elsewhere.
      for (const sink of openStreams) sink.close();
      const server: http.Server = this.server;
      if (!server.listening) return Promise.resolve();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A worker callback: its report, in the job's trace when the worker sent the traceparent it was launched with. */
function workerAction(rt: Runtime, route: string, target: string, bodyOf: (params: Record<string, unknown>) => Record<string, unknown> = () => ({}), after?: (worker: WorkerCall) => void) {
  return {
    visibility: "published" as const,
    async handler(ctx: Context<Record<string, unknown>, { worker: WorkerCall; traceparent?: string }>) {
      const { worker, traceparent } = ctx.meta;
      const answer = await rt.tracing.workerCallback(traceparent, route, { jobId: worker.jobId, attempt: worker.attempt }, () => ctx.call(target, { ...worker, ...bodyOf(ctx.params) }));
      after?.(worker);
      return answer;
    },
  };
}

/** Where a stream resumes: the `Last-Event-ID` header, or `lastEventId` in the query (422 when not a position). */
function resumePoint(req: Req): number | null {
  const header = req.headers["last-event-id"];
  const raw = typeof header === "string" && header !== "" ? header : req.query?.lastEventId;
  const after = parseEventPosition(raw);
  if (after === "invalid") throw blacktreeError("VALIDATION_FAILED", "Last-Event-ID must be an event id of this stream", { fields: [{ field: "Last-Event-ID", message: "must be a whole non-negative number" }] });
  return after;
}

/** Submitters see their own jobs; operators and admins see all. */
function canSee(caller: Caller, job: Pick<Job, "submittedBy">): boolean {
  return caller.role !== "submitter" || job.submittedBy === caller.name;
}

/** Keeps a worker's result small and plain: scalars only, bounded strings. */
function sanitizeResult(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params).slice(0, 50)) {
    if (isForbiddenKey(k)) continue;
    if (typeof v === "string") out[k] = v.slice(0, 4096);
    else if (typeof v === "number" || typeof v === "boolean" || v === null) out[k] = v;
  }
  return out;
}

/** Every error leaves as `{ error: { type, message, fields? } }` with the registry's status. */
export function writeError(req: Req, res: Res, err: any): void {
  let status = Number(err?.code) || 500;
  let type: string = err?.type || "INTERNAL";
  let message: string = err?.message || "Internal error";
  let fields = err?.data?.fields;
  if (err?.type === "entity.parse.failed" || err?.name === "SyntaxError") {
    status = 400;
    type = "BAD_REQUEST";
    message = "The request body is not valid JSON";
    fields = [{ field: "body", message: "must be valid JSON" }];
  } else if (err?.type === "entity.too.large") {
    status = 413;
    type = "PAYLOAD_TOO_LARGE";
    message = "The request body is too large";
    fields = [{ field: "body", message: "must be at most 256 kB" }];
  } else if (err?.type === "VALIDATION_ERROR" && Array.isArray(err.data)) {
    status = 422;
    type = "VALIDATION_FAILED";
    fields = err.data.map((e: any) => ({ field: e.field, message: e.message }));
  } else if (err?.name === "ServiceNotFoundError" || err?.name === "ServiceNotAvailableError") {
    status = 503;
  } else if (status === 429) {
    if (type !== "RATE_LIMITED") message = "Too many requests for this API key";
    type = "RATE_LIMITED";
    const resetAt = Number(err?.data?.resetAt) || Number(req.$route?.rateLimit?.store?.resetTime) || Date.now() + 1000;
    res.setHeader("Retry-After", String(Math.max(1, Math.ceil((resetAt - Date.now()) / 1000))));
  }
  if (status === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="blacktree"');
  if (status < 400 || status > 599) status = 500;
  if (status === 500 && type === "INTERNAL") message = "Internal error";
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.end(JSON.stringify({ error: { type, message, ...(Array.isArray(fields) ? { fields } : {}) } }));
}
