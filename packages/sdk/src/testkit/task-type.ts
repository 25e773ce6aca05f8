import os from "node:os";
import { blacktreeError, type FieldError } from "../errors";
import { compileParams } from "../params";
import type { JobRequest, JobResult, PluginContext, TaskJob, TaskType, Workload } from "../plugin";

/** Fields of a job's body that belong to the orchestrator (the envelope), not to the task type. */
export const ENVELOPE_FIELDS = ["type", "jobId", "idempotencyKey", "priority", "target", "timeouts", "retry", "createdAt"] as const;

export interface TaskTypeRun<P> {
  /** The job as `check`, `toWorkload` and `followUps` see it (params after schema and `check`). */
  job: TaskJob<P>;
  /** The values of `secretFields`, taken out of the params (the worker fetches them once). */
  secrets: Record<string, string>;
  /** `toWorkload` for attempt 1 (the orchestrator then adds the BLACKTREE_* worker env). */
  workload: Workload;
  concurrencyKey: string | null;
  cancelsOnSubmit: { deploymentId: string } | null;
  /** `followUps` for a worker's result. */
  followUps(result: JobResult): JobRequest[];
}

export interface RunTaskTypeOptions {
  /** Over a quiet development context (policy `{}`). */
  ctx?: Partial<PluginContext>;
  id?: string;
}

const quiet = () => undefined;

/**
 * Applies a task type to a job body the way the orchestrator does on `POST /api/jobs`:
 * the envelope fields are set aside, the params schema applied (`compileParams`: unknown
 * fields removed, defaults filled, `deploymentId` kept), secret fields taken out, `check`
 * run — then `toWorkload`. An invalid body throws VALIDATION_FAILED with the fields, as
 * the orchestrator answers 422. No orchestrator, no broker: a plain function for unit tests.
 */
export async function runTaskType<P = Record<string, unknown>>(taskType: TaskType<P>, body: Record<string, unknown>, opts: RunTaskTypeOptions = {}): Promise<TaskTypeRun<P>> {
  const ctx: PluginContext = { logger: { info: quiet, warn: quiet, error: quiet, debug: quiet }, dataDir: os.tmpdir(), mode: "development", policy: {}, ...opts.ctx };
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(structuredClone(body))) if (!(ENVELOPE_FIELDS as readonly string[]).includes(k)) params[k] = v;
  const checked = await compileParams(taskType)(params);
  if (checked !== true) {
    const fields: FieldError[] = (checked as Array<{ field?: string; message?: string; type?: string }>).map((e) => ({ field: e.field ?? "", message: e.message ?? "", type: e.type }));
    throw blacktreeError("VALIDATION_FAILED", `Invalid job: ${fields.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message)).join("; ")}`, { fields });
  }
  const secrets: Record<string, string> = {};
  for (const name of taskType.secretFields ?? []) {
    if (typeof params[name] === "string" && params[name] !== "") secrets[name] = params[name] as string;
    delete params[name];
  }
  const job: TaskJob<P> = { id: opts.id ?? "job_testkit", type: taskType.name, deploymentId: typeof params.deploymentId === "string" ? params.deploymentId : null, attempt: 0, params: params as P };
  await taskType.check?.(job, ctx);
  const attempt = { ...job, attempt: 1 };
  return {
    job,
    secrets,
    workload: taskType.toWorkload(attempt, ctx),
    concurrencyKey: taskType.concurrencyKey?.(job) ?? null,
    cancelsOnSubmit: taskType.cancelsOnSubmit?.(job) ?? null,
    followUps: (result) => taskType.followUps?.(attempt, result, ctx) ?? [],
  };
}
