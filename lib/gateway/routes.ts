import type { Role } from "../auth/roles";

/** Who may call a route: an API key role (or above), a worker token, or anyone. */
export type Access = Role | "worker" | "public";

export interface RouteSpec {
  /** The moleculer-web route the alias belongs to. */
  mount: "/api" | "/api/worker" | "/";
  method: "GET" | "POST";
  /** Relative to the mount, with `:params`. */
  path: string;
  /** Action of the gateway service. */
  action: string;
  access: Access;
  /**
   * A stream route (Server-Sent Events): it also accepts a stream token of this scope as
   * `?token=` (browsers' EventSource cannot set headers); no other route accepts one.
   */
  streamToken?: "job" | "events";
}

/**
 * Every REST route and who may call it: the gateway builds its aliases from this table
 * and checks access against it, and the access-matrix test walks it, so a new route
 * cannot be added without a declared role.
 */
export const ROUTES: readonly RouteSpec[] = [
  { mount: "/api", method: "POST", path: "jobs", action: "submitJob", access: "submitter" },
  { mount: "/api", method: "GET", path: "jobs", action: "listJobs", access: "submitter" },
  { mount: "/api", method: "GET", path: "jobs/:id", action: "getJob", access: "submitter" },
  { mount: "/api", method: "GET", path: "jobs/:id/logs", action: "jobLogs", access: "submitter", streamToken: "job" },
  { mount: "/api", method: "GET", path: "jobs/:id/events", action: "jobEvents", access: "submitter", streamToken: "job" },
  { mount: "/api", method: "GET", path: "events", action: "events", access: "operator", streamToken: "events" },
  { mount: "/api", method: "POST", path: "stream-tokens", action: "createStreamToken", access: "submitter" },
  { mount: "/api", method: "POST", path: "jobs/:id/cancel", action: "cancelJob", access: "operator" },
  { mount: "/api", method: "POST", path: "jobs/:id/retry", action: "retryJob", access: "operator" },
  { mount: "/api", method: "GET", path: "dead-letters", action: "deadLetters", access: "operator" },
  { mount: "/api", method: "POST", path: "dead-letters/:id/replay", action: "replayDeadLetter", access: "operator" },
  { mount: "/api", method: "GET", path: "plugins", action: "plugins", access: "admin" },
  { mount: "/api/worker", method: "POST", path: "started", action: "workerStarted", access: "worker" },
  { mount: "/api/worker", method: "POST", path: "heartbeat", action: "workerHeartbeat", access: "worker" },
  { mount: "/api/worker", method: "POST", path: "log", action: "workerLog", access: "worker" },
  { mount: "/api/worker", method: "POST", path: "result", action: "workerResult", access: "worker" },
  { mount: "/api/worker", method: "GET", path: "secrets", action: "workerSecrets", access: "worker" },
  { mount: "/", method: "GET", path: "health", action: "health", access: "public" },
  { mount: "/", method: "GET", path: "metrics", action: "metrics", access: "operator" },
];

/** moleculer-web aliases of a mount; a stream route's action gets the raw request and response (`$req`, `$res`). */
export function aliasesOf(mount: RouteSpec["mount"], service: string): Record<string, string | { action: string; passReqResToParams: true }> {
  return Object.fromEntries(
    ROUTES.filter((r) => r.mount === mount).map((r) => [`${r.method} ${r.path}`, r.streamToken ? { action: `${service}.${r.action}`, passReqResToParams: true as const } : `${service}.${r.action}`]),
  );
}

/** The route of a gateway action by its full name. */
export function routeOf(fullAction: string | undefined, service: string): RouteSpec | undefined {
  return ROUTES.find((r) => `${service}.${r.action}` === fullAction);
}

/** Access of a gateway action by its full name; unknown actions are admin-only (fail closed). */
export function accessOf(fullAction: string | undefined, service: string): Access {
  return routeOf(fullAction, service)?.access ?? "admin";
}

/** The URL path of a route, with each `:param` filled in. */
export function urlOf(route: RouteSpec, param = "x"): string {
  const base = route.mount === "/" ? "" : route.mount;
  return `${base}/${route.path.replace(/:[a-z]+/gi, param)}`;
}
