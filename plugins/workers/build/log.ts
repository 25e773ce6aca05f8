/**
 * The worker's log and its channel to the orchestrator: one client of the worker contract
 * (`@blacktree/sdk/worker`). Every line goes to stdout or stderr (the target's log of the
 * worker) and is pushed to the orchestrator; every line is redacted first, and secrets are
 * registered as soon as they are known, so not even a child's echo of one (git, docker)
 * reaches the log.
 */
import { WorkerClient } from "@blacktree/sdk/worker";

export const worker = WorkerClient.fromEnv();

export function registerSecret(value: string | null | undefined): void {
  worker.registerSecret(value);
}

export function redact(text: string): string {
  return worker.redact(text);
}

export const log = {
  progress: (message: string) => worker.log(`🔄 ${message}`),
  success: (message: string) => worker.log(`✅ ${message}`),
  warn: (message: string) => worker.log(`⚠️ ${message}`, "stderr"),
  failure: (message: string) => worker.log(`❌ ${message}`, "stderr"),
  /** A line of a child's output (git, docker), indented under the step that ran it. */
  child: (tool: string, line: string, stream: "stdout" | "stderr") => worker.log(`   ${tool}: ${line}`, stream),
  /** The machine-readable last line, for runs without a callback (printed, not pushed). */
  result: (result: object) => process.stdout.write(`blacktree-result ${redact(JSON.stringify(result))}\n`),
};
