/**
 * @blacktree/sdk/worker — the worker side of the contract: read the environment a worker
 * is launched with, report started / heartbeats / log lines / the result, fetch secrets
 * once. Node 18+, no dependencies; loads nothing of the rest of the SDK.
 */
export { WorkerClient, CallbackError, readWorkerEnv, runWorker } from "./client";
export type { WorkerEnv, WorkerResult, WorkerClientOptions, RunWorkerOptions } from "./client";
export { WORKER_CONTRACT, WORKER_ENV_VARS, WORKER_ROUTES, WORKER_RESPONSES, WORKER_LIMITS, workerOpenApiPaths } from "./contract";
export type { WorkerEnvName, WorkerEnvVar, WorkerRoute } from "./contract";
