import path from "node:path";
import type { ValidationSchema } from "@blacktree/sdk";

/** The `config` block of the process target in plugins.config.json. */
export interface ProcessTargetConfig {
  stopGraceMs?: number;
  logMaxBytes?: number;
  logFileMaxBytes?: number;
  stateDir?: string;
  retentionMs?: number;
}

export interface ProcessTargetSettings {
  /** How long a worker has between SIGTERM and SIGKILL. */
  stopGraceMs: number;
  /** The log tail that is kept when the file is cut, and what `logs()` returns. */
  logMaxBytes: number;
  /** Hard cap on one attempt's log file on disk. */
  logFileMaxBytes: number;
  /** Launch records, exit files and logs. */
  stateDir: string;
  /** How long an ended worker's files are kept (the engine stores the log tail itself when the attempt ends). */
  retentionMs: number;
}

export const processTargetDefaults = {
  stopGraceMs: 5_000,
  logMaxBytes: 256 * 1024,
  logFileMaxBytes: 10 * 1024 * 1024,
  retentionMs: 60 * 60_000,
} as const;

export const processTargetConfigSchema: ValidationSchema = {
  $$strict: true,
  stopGraceMs: { type: "number", integer: true, min: 0, default: processTargetDefaults.stopGraceMs },
  logMaxBytes: { type: "number", integer: true, positive: true, default: processTargetDefaults.logMaxBytes },
  logFileMaxBytes: { type: "number", integer: true, positive: true, default: processTargetDefaults.logFileMaxBytes },
  stateDir: { type: "string", empty: false, optional: true },
  retentionMs: { type: "number", integer: true, min: 0, default: processTargetDefaults.retentionMs },
};

/** Defaults are applied here too: the host may hand over a config it did not run through the schema. */
export function resolveSettings(config: ProcessTargetConfig, dataDir: string): ProcessTargetSettings {
  const logMaxBytes = config.logMaxBytes ?? processTargetDefaults.logMaxBytes;
  return {
    stopGraceMs: config.stopGraceMs ?? processTargetDefaults.stopGraceMs,
    logMaxBytes,
    // A cap below the tail we promise to keep would cut the file on every check.
    logFileMaxBytes: Math.max(config.logFileMaxBytes ?? processTargetDefaults.logFileMaxBytes, logMaxBytes),
    stateDir: path.resolve(config.stateDir ?? path.join(dataDir, "process")),
    retentionMs: config.retentionMs ?? processTargetDefaults.retentionMs,
  };
}
