/**
 * Traces: every job is one OpenTelemetry trace, across nodes. The only module that touches
 * the OpenTelemetry SDK; the engine, intake, gateway and sinks call the small hooks below.
 *
 *   blacktree.intake (REST / AMQP; a child of the submitter's `traceparent` when it sent one)
 *   ├─ blacktree.validate
 *   ├─ blacktree.claim            attempt n, on the node that claimed it
 *   ├─ blacktree.launch           attempt n: target.launch; the worker gets its context as TRACEPARENT
 *   │   └─ blacktree.worker.*     each callback of that worker (started, heartbeat, log, result, secrets)
 *   ├─ blacktree.run              attempt n, from its claim to its end (recorded when it ended)
 *   ├─ blacktree.publish          the final state delivered by a status sink
 *   └─ blacktree.intake           of each follow-up (a build's deploy): it joins its parent's trace
 *
 * The intake span's context is stored with the job (`jobs.trace_context`, a W3C
 * traceparent), so a span made on any node, after a failover too, joins the job's trace.
 * Spans are exported over OTLP/HTTP (JSON) when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; otherwise every hook is a no-op that
 * allocates nothing and no job stores a context.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from "@opentelemetry/api";
import type { TextMapPropagator } from "@opentelemetry/api";
import type { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";

export interface TracingConfig {
  /** OTLP/HTTP base URL (`/v1/traces` is appended), or null. */
  otlpEndpoint: string | null;
  /** The traces URL as is (wins over the base URL), or null. */
  otlpTracesEndpoint: string | null;
  /** Extra headers of the export requests (`k=v,k2=v2`, e.g. an auth token). */
  otlpHeaders: Record<string, string>;
  serviceName: string;
  /** Longest a finished span waits before its batch is sent. */
  exportDelayMs: number;
}

/** What the launch gives its worker: the context its callbacks send back. */
export interface LaunchTrace {
  /** TRACEPARENT of the worker's env; null when tracing is off. */
  traceparent: string | null;
  end(error?: unknown): void;
}

export interface IntakeTrace {
  /** The job's trace context, to store with it (null when tracing is off). */
  readonly traceContext: string | null;
  validate<T>(fn: () => Promise<T>): Promise<T>;
  end(outcome: { jobId?: string; created?: boolean; state?: string; error?: unknown }): void;
}

export interface AttemptEnd {
  traceContext: string | null;
  jobId: string;
  attempt: number;
  target: string | null;
  /** When the attempt was claimed and when it ended, epoch ms. */
  startedAt: number;
  endedAt: number;
  /** The job state the attempt ended in (succeeded, retrying, failed, …). */
  state: string;
}

export interface Tracing {
  readonly enabled: boolean;
  intake(source: string, incomingTraceparent?: string | null): IntakeTrace;
  claimed(job: { id: string; type: string; traceContext: string | null }, attempt: number, startedAt: number): void;
  launch(job: { id: string; type: string; traceContext: string | null }, attempt: number, target: string): LaunchTrace;
  attemptEnded(end: AttemptEnd): void;
  publish<T>(traceContext: string | null, attrs: { jobId: string; state: string; sink: string }, fn: () => Promise<T>): Promise<T>;
  /** A worker callback, joined to the launch's span by the traceparent header the worker sent. */
  workerCallback<T>(traceparent: string | undefined, route: string, attrs: { jobId: string; attempt: number }, fn: () => Promise<T>): Promise<T>;
  /** Sends what is finished (tests, shutdown). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

const NOOP_INTAKE: IntakeTrace = { traceContext: null, validate: (fn) => fn(), end() {} };
const NOOP_LAUNCH: LaunchTrace = { traceparent: null, end() {} };

export const NO_TRACING: Tracing = {
  enabled: false,
  intake: () => NOOP_INTAKE,
  claimed() {},
  launch: () => NOOP_LAUNCH,
  attemptEnded() {},
  publish: (_c, _a, fn) => fn(),
  workerCallback: (_t, _r, _a, fn) => fn(),
  flush: async () => undefined,
  shutdown: async () => undefined,
};

/** The env's tracing settings (lib/config/env.ts documents them). */
export function tracingConfigOf(env: Record<string, string | undefined>): TracingConfig {
  const headers: Record<string, string> = {};
  for (const pair of (env.OTEL_EXPORTER_OTLP_HEADERS ?? "").split(",")) {
    const eq = pair.indexOf("=");
    if (eq > 0) headers[decoded(pair.slice(0, eq).trim())] = decoded(pair.slice(eq + 1).trim());
  }
  const delay = Number(env.OTEL_BSP_SCHEDULE_DELAY);
  return {
    otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || null,
    otlpTracesEndpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || null,
    otlpHeaders: headers,
    serviceName: env.OTEL_SERVICE_NAME?.trim() || "blacktree-orchestrator",
    exportDelayMs: Number.isFinite(delay) && delay >= 0 ? delay : 2000,
  };
}

/** Values are percent-encoded (W3C Baggage style); a stray `%` is taken as it is. */
function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function createTracing(config: TracingConfig): Tracing {
  const url = config.otlpTracesEndpoint ?? (config.otlpEndpoint ? `${config.otlpEndpoint.replace(/\/+$/, "")}/v1/traces` : null);
  if (!url) return NO_TRACING;
  // The SDK is loaded only when traces are exported: a node without an endpoint never loads it.
  const { BasicTracerProvider, BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base") as typeof import("@opentelemetry/sdk-trace-base");
  const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-http") as typeof import("@opentelemetry/exporter-trace-otlp-http");
  const { resourceFromAttributes } = require("@opentelemetry/resources") as typeof import("@opentelemetry/resources");
  const { ATTR_SERVICE_NAME } = require("@opentelemetry/semantic-conventions") as typeof import("@opentelemetry/semantic-conventions");
  const { W3CTraceContextPropagator } = require("@opentelemetry/core") as typeof import("@opentelemetry/core");
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url, headers: config.otlpHeaders }), { scheduledDelayMillis: config.exportDelayMs })],
  });
  return new OtelTracing(provider.getTracer("blacktree-orchestrator"), provider, new W3CTraceContextPropagator());
}

function endWith(span: Span, error?: unknown): void {
  if (error) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

/** Runs `fn` as the span's work: the span ends with it, marked failed when it throws. */
async function within<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    const out = await fn();
    span.end();
    return out;
  } catch (err) {
    endWith(span, err);
    throw err;
  }
}

class OtelTracing implements Tracing {
  readonly enabled = true;

  constructor(
    private readonly tracer: Tracer,
    private readonly provider: BasicTracerProvider,
    private readonly propagator: TextMapPropagator,
  ) {}

  /** The context a stored or received traceparent names (the root context when there is none or it is malformed). */
  private contextOf(traceparent: string | null | undefined): Context {
    if (!traceparent) return ROOT_CONTEXT;
    return this.propagator.extract(ROOT_CONTEXT, { traceparent }, { get: (c, k) => (c as Record<string, string>)[k], keys: (c) => Object.keys(c) });
  }

  private traceparentOf(span: Span): string {
    const carrier: Record<string, string> = {};
    this.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, { set: (c, k, v) => ((c as Record<string, string>)[k] = v) });
    return carrier.traceparent;
  }

  intake(source: string, incomingTraceparent?: string | null): IntakeTrace {
    const span = this.tracer.startSpan("blacktree.intake", { kind: source === "amqp" ? SpanKind.CONSUMER : SpanKind.SERVER, attributes: { "blacktree.source": source } }, this.contextOf(incomingTraceparent));
    const parent = trace.setSpan(ROOT_CONTEXT, span);
    const tracer = this.tracer;
    return {
      traceContext: this.traceparentOf(span),
      async validate<T>(fn: () => Promise<T>): Promise<T> {
        const v = tracer.startSpan("blacktree.validate", { kind: SpanKind.INTERNAL }, parent);
        return within(v, fn);
      },
      end({ jobId, created, state, error }) {
        const attrs: Attributes = {};
        if (jobId) attrs["blacktree.job.id"] = jobId;
        if (created !== undefined) attrs["blacktree.job.created"] = created;
        if (state) attrs["blacktree.job.state"] = state;
        span.setAttributes(attrs);
        endWith(span, error);
      },
    };
  }

  claimed(job: { id: string; type: string; traceContext: string | null }, attempt: number, startedAt: number): void {
    this.tracer.startSpan("blacktree.claim", { startTime: startedAt, attributes: jobAttrs(job, attempt) }, this.contextOf(job.traceContext)).end();
  }

  launch(job: { id: string; type: string; traceContext: string | null }, attempt: number, target: string): LaunchTrace {
    const span = this.tracer.startSpan("blacktree.launch", { kind: SpanKind.CLIENT, attributes: { ...jobAttrs(job, attempt), "blacktree.target": target } }, this.contextOf(job.traceContext));
    return { traceparent: this.traceparentOf(span), end: (error) => endWith(span, error) };
  }

  attemptEnded(end: AttemptEnd): void {
    const span = this.tracer.startSpan(
      "blacktree.run",
      { startTime: end.startedAt, attributes: { "blacktree.job.id": end.jobId, "blacktree.attempt": end.attempt, "blacktree.target": end.target ?? "", "blacktree.job.state": end.state } },
      this.contextOf(end.traceContext),
    );
    if (end.state !== "succeeded" && end.state !== "retrying") span.setStatus({ code: SpanStatusCode.ERROR, message: end.state });
    span.end(Math.max(end.endedAt, end.startedAt));
  }

  async publish<T>(traceContext: string | null, attrs: { jobId: string; state: string; sink: string }, fn: () => Promise<T>): Promise<T> {
    const span = this.tracer.startSpan("blacktree.publish", { kind: SpanKind.PRODUCER, attributes: { "blacktree.job.id": attrs.jobId, "blacktree.job.state": attrs.state, "blacktree.sink": attrs.sink } }, this.contextOf(traceContext));
    return within(span, fn);
  }

  async workerCallback<T>(traceparent: string | undefined, route: string, attrs: { jobId: string; attempt: number }, fn: () => Promise<T>): Promise<T> {
    // A worker that sends no context (an older client, tracing turned on since its launch) has no trace to join.
    if (!traceparent) return fn();
    const span = this.tracer.startSpan(`blacktree.worker.${route}`, { kind: SpanKind.SERVER, attributes: { "blacktree.job.id": attrs.jobId, "blacktree.attempt": attrs.attempt } }, this.contextOf(traceparent));
    return within(span, fn);
  }

  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

function jobAttrs(job: { id: string; type: string }, attempt: number): Attributes {
  return { "blacktree.job.id": job.id, "blacktree.job.type": job.type, "blacktree.attempt": attempt };
}
