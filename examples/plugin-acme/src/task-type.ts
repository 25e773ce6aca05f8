import path from "node:path";
import { defineTaskType, deploymentIdRule, fieldError, nodeWorkerCommand, type JobRequest } from "@blacktree/sdk";

/** The fields of an `acme-report` job, after its schema and `check`. */
export interface ReportParams {
  deploymentId: string;
  title: string;
  lines: number;
  notify: boolean;
}

/**
 * `acme-report`: writes a short report about a deployment. Its worker (./worker) logs a
 * line per `lines` and reports how many it wrote; `webhookToken` is a secret the worker
 * fetches once; with `notify`, a succeeded report is followed by a one-line summary job.
 */
export const acmeReport = defineTaskType<ReportParams>({
  name: "acme-report",
  params: {
    deploymentId: deploymentIdRule,
    title: { type: "string", empty: false, max: 200, default: "Report" },
    lines: { type: "number", integer: true, min: 1, max: 1000, default: 3, convert: true },
    notify: { type: "boolean", default: false, convert: true },
    webhookToken: { type: "string", optional: true, max: 4096 },
  },
  secretFields: ["webhookToken"],
  defaults: {
    target: "acme",
    timeouts: { runTimeout: 60_000 },
    retry: { maxAttempts: 2, retryOn: ["WORKER_LOST", "EXIT_NONZERO"] },
  },
  concurrencyKey: (job) => `acme:${job.params.deploymentId}`,
  check(job) {
    job.params.title = job.params.title.trim();
    if (/[\u0000-\u001f]/.test(job.params.title)) fieldError("title", "must not contain control characters");
  },
  toWorkload(job) {
    return {
      command: nodeWorkerCommand(path.join(__dirname, "worker")),
      env: { ACME_TITLE: job.params.title, ACME_LINES: String(job.params.lines) },
      secrets: ["webhookToken"],
    };
  },
  followUps(job, result): JobRequest[] {
    if (!job.params.notify || result.success !== true) return [];
    const summary = `${job.params.title}: ${String(result.lines)} lines`;
    return [{ type: "acme-report", deploymentId: job.params.deploymentId, title: summary, lines: 1, idempotencyKey: `${job.id}.notify` }];
  },
});
