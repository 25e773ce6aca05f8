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
  /** Lines posted so far (the stored log keeps the last 64 kB of them). */
  logLines?: number;
  target?: string;
  /** Changes with `target` when a launch falls back to another target. */
  key?: string;
}

/** Work a decision causes, stored in the decision's transaction and carried out at least once. */
export interface EffectInput {
  kind: string;
  payload: Record<string, unknown>;
  /** Not before this time (epoch ms); default now. */
  runAfter?: number;
}

export interface Effect {
  id: number;
  jobId: string;
  kind: string;
  payload: Record<string, unknown>;
  createdAt: number;
  runAfter: number;
  /** Times it was tried and failed. */
  tries: number;
  lastError: string | null;
}

/** What a commit changed, announced by the store after it committed. */
export interface StoreChange {
  jobIds: string[];
  /** Job states written (new and changed jobs). */
  states: JobState[];
  /** Whether effects were written. */
  effects: boolean;
  /**
   * The earliest wake-up (deadline, end of a backoff) the commit wrote, null when none: the
   * clock re-arms from it without asking the store. Absent when unknown (a notice from a
   * node that does not send it): the clock then asks.
   */
  wakeAt?: number | null;
}

export interface TransitionRequest {
  /** Compare-and-set guard: the transition happens only if the job is in one of these. */
  from: JobState | readonly JobState[];
  to: JobState;
  /**
   * The rest of the compare-and-set, for decisions about an attempt: the attempt number
   * (and the job version) the decision was made on. A stale decision fails closed.
   */
  expect?: { attempt?: number; version?: number };
  /** Written in the same transaction: what this decision causes. */
  effects?: EffectInput[];
  patch?: JobPatch;
  /** Changes to the job's current attempt, written in the same transaction. */
  attempt?: AttemptPatch;
  event?: EventInput;
  now?: number;
  /**
   * The job and its current attempt as the caller read them for this decision. With
   * `expect.version` set, a store may write against them without reading the job again: a
   * job that moved on fails the version check either way.
   */
  basis?: { job: Job; attempt: Attempt | null };
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

/** An attempt that holds compute (launching, running or stopping) with its job. */
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
  /** createJob for many, in one transaction. */
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
  /** Several jobs' attempts in one read (a sink's batch of final events); missing ones are left out. */
  getAttemptsOf(refs: ReadonlyArray<{ jobId: string; attempt: number }>): Promise<Attempt[]>;
  /** Updates an attempt; `onlyIfState` guards against late writes to a finished attempt. */
  updateAttempt(jobId: string, attempt: number, patch: AttemptPatch, opts?: { event?: EventInput; onlyIfState?: readonly AttemptState[] }): Promise<Attempt | null>;
  /** Attempts that hold compute (launching, running, stopping), oldest first. */
  activeAttempts(limit?: number): Promise<ActiveAttempt[]>;
  /** The attempt launched with this key (a target pushing a status knows only the key). */
  attemptByKey(key: string): Promise<ActiveAttempt | null>;
  /** Live jobs whose wake-up time has come (a deadline or the end of a backoff), soonest first. */
  dueJobs(now: number, limit: number): Promise<Job[]>;
  /** Recomputes a job's wake-up from its stored state (after the clock found nothing due). */
  refreshWake(id: string): Promise<void>;

  /** Takes up to `limit` due effects for `leaseMs` (another taker skips them until then). */
  leaseEffects(now: number, limit: number, leaseMs: number): Promise<Effect[]>;
  completeEffect(id: number, now?: number): Promise<void>;
  /** Records a failure (or, with `countsAsTry` false, a wait); the effect is due again at `retryAt`. */
  failEffect(id: number, error: string, retryAt: number, countsAsTry?: boolean): Promise<void>;
  /** The earliest wake-up of any live job, or null. */
  nextWake(): Promise<number | null>;
  /** Stores effects outside a transition (e.g. an effect that schedules another). */
  addEffects(jobId: string, effects: EffectInput[]): Promise<void>;

  /**
   * Takes or renews the lease `name` for `holder` until now + ttlMs, unless another holder's
   * lease is still running; true when `holder` holds it now.
   */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  releaseLease(name: string, holder: string): Promise<void>;

  /** Announces every commit that changed jobs or effects; returns the unsubscribe. */
  onCommit(listener: (change: StoreChange) => void): () => void;

  getSecrets(jobId: string): Promise<Record<string, string>>;
  /**
   * The worker's one-time secrets fetch, checked and marked in one transaction: the job's
   * secrets when `attempt` is its current attempt, live (launching or running), launched
   * with `key`, and no fetch with this key was recorded; then records
   * `attempt.secrets_fetched` (`data: { names, key }`). Null (and nothing written) otherwise.
   */
  takeSecrets(jobId: string, attempt: number, key: string): Promise<Record<string, string> | null>;

  getEvents(jobId: string): Promise<JobEvent[]>;
  /** The outbox, in commit order, after `afterSeq`. */
  readEvents(afterSeq: number, limit: number): Promise<JobEvent[]>;
  /** The outbox position of the newest event `readEvents` can return now (0 when there is none). */
  lastEventSeq(): Promise<number>;
  getCursor(sink: string): Promise<number>;
  setCursor(sink: string, seq: number): Promise<void>;

  /** Inserts the dead letter unless its id exists (a redelivery); `created: false` returns the existing one. */
  addDeadLetter(letter: NewDeadLetter): Promise<{ letter: DeadLetter; created: boolean }>;
  getDeadLetter(id: string): Promise<DeadLetter | null>;
  /** Newest first. */
  listDeadLetters(limit?: number): Promise<DeadLetter[]>;
  markDeadLetterReplayed(id: string, now?: number): Promise<DeadLetter | null>;
}
