import { Loggers } from "moleculer";

/** A Moleculer logger that keeps every line (all levels) for a test to search. */
export class CaptureLogger extends Loggers.Base {
  readonly lines: string[] = [];

  override getLogHandler(bindings?: { mod?: string }) {
    return (type: string, args: unknown[]) => {
      this.lines.push(`[${type}] ${bindings?.mod ?? ""}: ${args.map((a) => (typeof a === "string" ? a : safeJson(a))).join(" ")}`);
    };
  }
}

function safeJson(value: unknown): string {
  try {
    return value instanceof Error ? `${value.name}: ${value.message}` : JSON.stringify(value);
  } catch {
    return String(value);
  }
}
