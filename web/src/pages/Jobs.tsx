import { useEffect, useRef, useState } from "preact/hooks";
import { api, can, fmtTime, JOB_STATES, Me, openStream, query, StreamStatus } from "../api";
import { LiveBadge, StateBadge } from "./common";

interface Filters {
  state?: string;
  type?: string;
  deploymentId?: string;
  submittedBy?: string;
}

const POLL_MS = 2000;

/**
 * The jobs list. An operator's list follows the stream of all jobs (each event updates its
 * row at once and reloads the page of the list soon after, for new jobs); a submitter,
 * who may not open that stream, polls.
 */
export function Jobs({ me, params }: { me: Me; params: Record<string, string> }) {
  const filters: Filters = { state: params.state, type: params.type, deploymentId: params.deploymentId, submittedBy: params.submittedBy };
  const key = JSON.stringify(filters);
  const [items, setItems] = useState<any[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<StreamStatus>("connecting");
  const reload = useRef<() => void>(() => undefined);

  useEffect(() => {
    let gone = false;
    let pending: ReturnType<typeof setTimeout> | null = null;
    const load = async () => {
      try {
        const page = await api("GET", `/api/jobs${query({ ...filters, limit: "100" })}`);
        if (!gone) {
          setItems(page.items);
          setError(null);
        }
      } catch (err) {
        if (!gone) setError((err as Error).message);
      }
    };
    // At most one reload per half second whatever the event rate.
    const soon = () => {
      if (!pending) pending = setTimeout(() => ((pending = null), void load()), 500);
    };
    reload.current = () => void load();
    void load();
    let close = () => undefined as void;
    if (can(me, "operator")) {
      close = openStream({
        path: `/api/events${query({ type: filters.type, deploymentId: filters.deploymentId })}`,
        token: { scope: "events" },
        events: ["job"],
        onMessage: (_name, ev) => {
          setItems((rows) => rows && rows.map((r) => (r.id === ev.jobId && ev.to ? { ...r, state: ev.to, attempt: ev.attempt ?? r.attempt, updatedAt: ev.at ?? r.updatedAt } : r)));
          soon();
        },
        onStatus: setStatus,
      });
    } else setStatus("polling");
    return () => {
      gone = true;
      close();
      if (pending) clearTimeout(pending);
    };
  }, [key, me.role]);

  useEffect(() => {
    if (status === "live" || status === "connecting") return;
    const t = setInterval(() => reload.current(), POLL_MS);
    return () => clearInterval(t);
  }, [status, key]);

  const apply = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    const next: Record<string, string> = {};
    for (const [k, v] of form.entries()) if (typeof v === "string" && v.trim()) next[k] = v.trim();
    location.hash = `#/jobs${query(next)}`;
  };

  return (
    <section>
      <div class="title">
        <h1>Jobs</h1>
        <LiveBadge status={status} />
      </div>
      <form class="filters" onSubmit={apply} key={key}>
        <label>
          State
          <select name="state">
            <option value="">any</option>
            {JOB_STATES.map((s) => (
              <option value={s} selected={s === filters.state}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type <input name="type" defaultValue={filters.type ?? ""} size={10} />
        </label>
        <label>
          Deployment <input name="deploymentId" defaultValue={filters.deploymentId ?? ""} size={14} />
        </label>
        {can(me, "operator") && (
          <label>
            Submitter <input name="submittedBy" defaultValue={filters.submittedBy ?? ""} size={10} />
          </label>
        )}
        <button type="submit">Filter</button>
        <a href="#/jobs" class="button secondary">
          Clear
        </a>
      </form>
      <SubmitForm />
      {error && <p class="error">{error}</p>}
      {items === null ? (
        <p class="loading">Loading…</p>
      ) : items.length === 0 ? (
        <p class="empty">No jobs.</p>
      ) : (
        <table class="jobs" data-testid="jobs">
          <thead>
            <tr>
              <th>Job</th>
              <th>Type</th>
              <th>Deployment</th>
              <th>State</th>
              <th>Attempt</th>
              <th>Submitter</th>
              <th>Created</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {items.map((j) => (
              <tr data-job={j.id} key={j.id}>
                <td>
                  <a href={`#/jobs/${encodeURIComponent(j.id)}`}>{j.id}</a>
                </td>
                <td>{j.type}</td>
                <td>{j.deploymentId ?? "—"}</td>
                <td>
                  <StateBadge state={j.state} />
                </td>
                <td>{j.attempt}</td>
                <td>{j.submittedBy ?? j.source}</td>
                <td>{fmtTime(j.createdAt)}</td>
                <td>{fmtTime(j.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Submits a job as JSON (the body of POST /api/jobs) and opens its page. */
function SubmitForm() {
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return setError("Not valid JSON.");
    }
    try {
      const res = await api("POST", "/api/jobs", body);
      setText("");
      location.hash = `#/jobs/${encodeURIComponent(res.job.id)}`;
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <details class="card submit">
      <summary>Submit a job</summary>
      <form onSubmit={submit}>
        <textarea name="job" rows={5} placeholder='{"type": "build", "deploymentId": "shop", "repository": "…"}' value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
        <button type="submit">Submit</button>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
    </details>
  );
}
