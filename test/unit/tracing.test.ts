import fs from "node:fs";
import path from "node:path";
import { createTracing, NO_TRACING, tracingConfigOf } from "../../lib/tracing";

const ROOT = path.resolve(__dirname, "../..");

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? (e.name === "node_modules" || e.name === "dist" ? [] : sources(p)) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("tracing", () => {
  test("lib/tracing.ts is the only module that uses the OpenTelemetry packages", () => {
    const users = ["lib", "services", "bin", "mixins", "plugins", "packages/sdk/src"].flatMap((d) => sources(path.join(ROOT, d))).filter((f) => fs.readFileSync(f, "utf8").includes("@opentelemetry/"));
    expect(users.map((f) => path.relative(ROOT, f))).toEqual(["lib/tracing.ts"]);
  });

  test("settings come from the OTEL_* variables; without an endpoint there is nothing to export", () => {
    expect(tracingConfigOf({})).toEqual({ otlpEndpoint: null, otlpTracesEndpoint: null, otlpHeaders: {}, serviceName: "blacktree-orchestrator", exportDelayMs: 2000 });
    expect(tracingConfigOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20x, x-team=ops", OTEL_SERVICE_NAME: "front", OTEL_BSP_SCHEDULE_DELAY: "100" })).toEqual({
      otlpEndpoint: "http://c:4318",
      otlpTracesEndpoint: null,
      otlpHeaders: { authorization: "Bearer x", "x-team": "ops" },
      serviceName: "front",
      exportDelayMs: 100,
    });
    expect(createTracing(tracingConfigOf({ OTEL_SERVICE_NAME: "front" }))).toBe(NO_TRACING);
  });

  test("the no-op hooks run what they wrap and store no context", async () => {
    const intake = NO_TRACING.intake("rest", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    expect(intake.traceContext).toBeNull();
    expect(await intake.validate(async () => 7)).toBe(7);
    expect(NO_TRACING.launch({ id: "j", type: "t", traceContext: null }, 1, "process").traceparent).toBeNull();
    expect(await NO_TRACING.workerCallback("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "log", { jobId: "j", attempt: 1 }, async () => "ok")).toBe("ok");
  });
});
