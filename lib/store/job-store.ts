import type { Attempt, AttemptState, Job, JobEvent, JobResult, JobError, NewJob } from "../jobs/model";
import type { JobState } from "../jobs/states";
import type { Limits } from "../jobs/limits";

/** A message the intake could not turn into a job (a job's invalid fields make a `rejected` job instead). */
export interface DeadLetter {
  id: string;
  /** Where it came from, e.g. `amqp:execute.queue`. */
  source: string;
  /** Stable code: NOT_JSON, NOT_AN_OBJECT, TOO_LARGE, NO_DEPLOYMENT_ID, … */
  reason: string;
  detail: string;
  /** The message as received, with any `token` redacted. */
  body: string;
  /** Transport properties worth keeping (messageId, routing key, …). */
  properties: Record<string, unknown>;
  receivedAt: number;
  replayedAt: number | null;
  replayCount: number;
}

export type NewDeadLetter = Omit<DeadLetter, "replayedAt" | "replayCount">;

/** An event to record together with a transition (the outbox row). */
export interface EventInput {
  kind?: string;
  data?: Record<string, unknown>;
}

/** Fields a transition may change along with `state`. */
export interface JobPatch {
  attempt?: number;
  target?: string | null;
  runAfter?: number | null;
  /** End of totalTimeout (reset by an operator's retry). */
  deadline?: number | null;
  result?: JobResult | null;
  error?: JobError | null;
}

export interface AttemptPatch {
  handle?: unknown;
  state?: AttemptState;
  startedAt?: number | null;
  endedAt?: number | null;
  heartbeatAt?: number | null;
  exitCode?: number | null;
  outcome?: Attempt["outcome"];
  reason?: string | null;
  result?: JobResult | null;
  log?: string | null;
  target?: string;
  /** Changes with `target` when a launch falls back to another target. */
  key?: string;
}

export interface TransitionRequest {
  /** Compare-and-set guard: the transition happens only if the job is in one of these. */
  from: JobState | readonly JobState[];
  to: JobState;
  patch?: JobPatch;
  /** Changes to the job's current attempt, written in the same transaction. */
  attempt?: AttemptPatch;
  event?: EventInput;
  now?: number;
}

export interface JobFilter {
  state?: JobState;
  type?: string;
  deploymentId?: string;
  /** Only jobs submitted with this API key name. */
  submittedBy?: string;
  limit?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

export interface ClaimRequest {
  now: number;
  limits: Limits;
  /** Most jobs to claim in one call. */
  max: number;
}

export interface Claim {
  job: Job;
  attempt: Attempt;
}

export interface ActiveAttempt {
  job: Job;
  attempt: Attempt;
}

/**
 * The job store: one interface, one schema, a dialect per database. Every state change
 * is a compare-and-set that writes an event row in the same transaction. Methods are
 * async so that a networked database fits behind the same interface.
 */
export interface JobStore {
  readonly dialect: string;
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Cheap round trip for readiness checks. */
  ping(): Promise<void>;

  /** Inserts the job unless its id exists; `created: false` returns the existing one. */
  createJob(job: NewJob, now?: number): Promise<{ job: Job; created: boolean }>;
  /**
   * `createJob` for many jobs in ONE transaction (all or none): each is inserted with its
   * event row and sealed secrets unless its id exists (`created: false`, the existing job;
   * an id repeated in the batch is created once). Results in input order.
   */
  createJobs(jobs: NewJob[], now?: number): Promise<Array<{ job: Job; created: boolean }>>;
  getJob(id: string): Promise<Job | null>;
  listJobs(filter: JobFilter): Promise<{ items: Job[]; nextCursor: string | null }>;
  /** Jobs in any of the states, oldest first. */
  jobsInStates(states: readonly JobState[], limit?: number): Promise<Job[]>;
  countByState(): Promise<Array<{ state: JobState; type: string; target: string | null; count: number }>>;

  /** Compare-and-set: returns the updated job, or null when the job was not in `from`. */
  transition(id: string, req: TransitionRequest): Promise<Job | null>;
  /** Atomically moves runnable queued jobs to `launching` within the limits, creating their attempts. */
  claimJobs(req: ClaimRequest): Promise<Claim[]>;

  getAttempts(jobId: string): Promise<Attempt[]>;
  getAttempt(jobId: string, attempt: number): Promise<Attempt | null>;
  /** Updates an attempt; `onlyIfState` guards against late writes to a finished attempt. */
  updateAttempt(jobId: string, attempt: number, patch: AttemptPatch, opts?: { event?: EventInput; onlyIfState?: readonly AttemptState[] }): Promise<Attempt | null>;
  /** Current attempts of jobs that hold compute (launching or running). */
  activeAttempts(): Promise<ActiveAttempt[]>;

  getSecrets(jobId: string): Promise<Record<string, string>>;
  wipeSecrets(jobId: string): Promise<void>;

  getEvents(jobId: string): Promise<JobEvent[]>;
  /** The outbox, in commit order, after `afterSeq`. */
  readEvents(afterSeq: number, limit: number): Promise<JobEvent[]>;
  getCursor(sink: string): Promise<number>;
  setCursor(sink: string, seq: number): Promise<void>;

  /** Inserts the dead letter unless its id exists (a redelivery); `created: false` returns the existing one. */
  addDeadLetter(letter: NewDeadLetter): Promise<{ letter: DeadLetter; created: boolean }>;
  getDeadLetter(id: string): Promise<DeadLetter | null>;
  /** Newest first. */
  listDeadLetters(limit?: number): Promise<DeadLetter[]>;
  markDeadLetterReplayed(id: string, now?: number): Promise<DeadLetter | null>;
}
