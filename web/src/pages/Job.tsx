import { useEffect, useRef, useState } from "preact/hooks";
import { api, can, fmtDuration, fmtTime, isFinal, Me, openStream, RETRYABLE, StreamStatus } from "../api";
import { Json, LiveBadge, StateBadge } from "./common";

const POLL_MS = 2000;
const LOG_TAIL = 500;

interface LogLine {
  attempt: number;
  line: string;
}

/** One job: state, "why waiting", actions by role, attempts, history timeline, live log tail, result. */
export function JobPage({ me, id }: { me: Me; id: string }) {
  const [view, setView] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<StreamStatus>("connecting");
  const [logStatus, setLogStatus] = useState<StreamStatus>("connecting");
  const [lines, setLines] = useState<LogLine[]>([]);
  const [busy, setBusy] = useState<string | null>(null);
  const load = useRef<() => Promise<void>>(async () => undefined);
  const loadLogs = useRef<() => Promise<void>>(async () => undefined);
  const path = `/api/jobs/${encodeURIComponent(id)}`;
  const final = view ? isFinal(view.job.state) : false;

  useEffect(() => {
    let gone = false;
    let pending: ReturnType<typeof setTimeout> | null = null;
    load.current = async () => {
      try {
        const v = await api("GET", path);
        if (!gone) {
          setView(v);
          setError(null);
        }
      } catch (err) {
        if (!gone) setError((err as Error).message);
      }
    };
    loadLogs.current = async () => {
      try {
        const l = await api("GET", `${path}/logs`);
        if (!gone) setLines(l.attempts.flatMap((a: any) => a.lines.map((line: string) => ({ attempt: a.attempt, line }))).slice(-LOG_TAIL));
      } catch {
        // The log is best effort; the job view says what matters.
      }
    };
    const soon = () => {
      if (!pending) pending = setTimeout(() => ((pending = null), void load.current()), 150);
    };
    void load.current();
    const closeEvents = openStream({
      path: `${path}/events`,
      token: { jobId: id },
      events: ["job"],
      onMessage: soon,
      onStatus: (s) => {
        setStatus(s);
        if (s === "ended") void load.current();
      },
    });
    const closeLogs = openStream({
      path: `${path}/logs?follow=1`,
      token: { jobId: id },
      events: ["log"],
      onMessage: (_n, data: LogLine) => setLines((old) => [...old, data].slice(-LOG_TAIL)),
      onStatus: setLogStatus,
      // A new stream sends the log from its start.
      onReset: () => setLines([]),
    });
    return () => {
      gone = true;
      closeEvents();
      closeLogs();
      if (pending) clearTimeout(pending);
    };
  }, [id]);

  // Without a stream (or between reconnects), poll until the job is final.
  useEffect(() => {
    if (status === "live" || status === "connecting" || (final && status === "ended")) return;
    if (final) return;
    const t = setInterval(() => void load.current(), POLL_MS);
    return () => clearInterval(t);
  }, [status, final]);
  useEffect(() => {
    if (logStatus === "live" || logStatus === "connecting" || logStatus === "ended") return;
    void loadLogs.current();
    if (final) return;
    const t = setInterval(() => void loadLogs.current(), POLL_MS);
    return () => clearInterval(t);
  }, [logStatus, final]);

  const act = async (action: "cancel" | "retry") => {
    setBusy(action);
    try {
      await api("POST", `${path}/${action}`, action === "cancel" ? { reason: `cancelled from the dashboard by ${me.name}` } : {});
      setError(null);
      await load.current();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(null);
    }
  };

  if (!view) return error ? <p class="error">{error}</p> : <p class="loading">Loading…</p>;
  const { job, attempts, history } = view;
  const waiting = view.waiting ?? job.waiting ?? null;
  const operator = can(me, "operator");
  return (
    <section>
      <p>
        <a href="#/jobs">← Jobs</a>
      </p>
      <div class="title">
        <h1 data-testid="job-id">{job.id}</h1>
        <StateBadge state={job.state} />
        <LiveBadge status={status} />
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="actions">
        {operator && !isFinal(job.state) && (
          <button class="danger" data-testid="cancel" disabled={busy !== null} onClick={() => void act("cancel")}>
            Cancel
          </button>
        )}
        {operator && RETRYABLE.includes(job.state) && (
          <button data-testid="retry" disabled={busy !== null} onClick={() => void act("retry")}>
            Retry
          </button>
        )}
      </div>
      {!isFinal(job.state) && waiting && <Waiting waiting={waiting} />}
      <dl class="facts">
        <dt>Type</dt>
        <dd>{job.type}</dd>
        <dt>Deployment</dt>
        <dd>{job.deploymentId ?? "—"}</dd>
        <dt>Target</dt>
        <dd>{job.target ?? "—"}</dd>
        <dt>Priority</dt>
        <dd>{job.priority}</dd>
        <dt>Submitted by</dt>
        <dd>{job.submittedBy ?? job.source}</dd>
        <dt>Created</dt>
        <dd>{fmtTime(job.createdAt)}</dd>
        <dt>Updated</dt>
        <dd>{fmtTime(job.updatedAt)}</dd>
        {job.parentId && (
          <>
            <dt>Parent</dt>
            <dd>
              <a href={`#/jobs/${encodeURIComponent(job.parentId)}`}>{job.parentId}</a>
            </dd>
          </>
        )}
      </dl>
      {(job.result || job.error) && (
        <div class="card" data-testid="result">
          <h2>Result</h2>
          {typeof job.result?.imageUrl === "string" && (
            <p>
              Image: <code data-testid="image-url">{job.result.imageUrl}</code>
            </p>
          )}
          {job.error && (
            <p class="error">
              {job.error.code}: {job.error.message}
            </p>
          )}
          {job.result && <Json value={job.result} />}
        </div>
      )}
      <h2>Attempts</h2>
      {attempts.length === 0 ? (
        <p class="empty">No attempt yet.</p>
      ) : (
        <table data-testid="attempts">
          <thead>
            <tr>
              <th>#</th>
              <th>Target</th>
              <th>State</th>
              <th>Outcome</th>
              <th>Launched</th>
              <th>Started</th>
              <th>Ended</th>
              <th>Took</th>
              <th>Exit</th>
            </tr>
          </thead>
          <tbody>
            {attempts.map((a: any) => (
              <tr>
                <td>{a.attempt}</td>
                <td>{a.target}</td>
                <td>{a.state}</td>
                <td title={a.reason ?? ""}>
                  {a.outcome ?? "—"}
                  {a.reason ? <span class="reason"> — {a.reason}</span> : null}
                </td>
                <td>{fmtTime(a.launchedAt)}</td>
                <td>{fmtTime(a.startedAt)}</td>
                <td>{fmtTime(a.endedAt)}</td>
                <td>{a.endedAt && a.launchedAt ? fmtDuration(Date.parse(a.endedAt) - Date.parse(a.launchedAt)) : "—"}</td>
                <td>{a.exitCode ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>
        Log <LiveBadge status={logStatus} />
      </h2>
      <pre class="log" data-testid="log">
        {lines.length === 0 ? "(no log lines)" : lines.map((l) => `[${l.attempt}] ${l.line}`).join("\n")}
      </pre>
      <h2>History</h2>
      <ol class="timeline" data-testid="history">
        {history.map((e: any) => (
          <li>
            <time>{fmtTime(e.at)}</time>
            <span class="kind">{e.kind}</span>
            {e.to && (
              <span>
                {e.from ? <StateBadge state={e.from} /> : null} → <StateBadge state={e.to} />
              </span>
            )}
            {e.data && Object.keys(e.data).length > 0 && <code class="data">{JSON.stringify(e.data)}</code>}
          </li>
        ))}
      </ol>
    </section>
  );
}

/** What holds a queued job (GET /api/jobs/:id `waiting`). */
function Waiting({ waiting }: { waiting: any }) {
  let text: string;
  if (waiting.reason === "limit") {
    const l = waiting.limit ?? {};
    const which = l.scope === "global" ? "the global limit" : `the ${l.scope} limit${l.name ? ` “${l.name}”` : ""}`;
    text = `Waiting for ${which}: ${l.inUse} of ${l.max} in use${waiting.position !== undefined ? `; position ${waiting.position} in line` : ""}.`;
  } else if (waiting.reason === "backoff") text = `Backing off before the next attempt, until ${fmtTime(waiting.until)}.`;
  else if (waiting.reason === "scheduled") text = `Scheduled: not before ${fmtTime(waiting.until)}.`;
  else if (waiting.reason === "next") text = "Next in line: the dispatcher claims it on its next round.";
  else text = `Waiting: ${JSON.stringify(waiting)}`;
  return (
    <div class="card waiting" data-testid="waiting" data-reason={waiting.reason}>
      <strong>Why waiting?</strong> {text}
    </div>
  );
}
