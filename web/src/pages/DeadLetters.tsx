import { useEffect, useState } from "preact/hooks";
import { api, can, fmtTime, Me } from "../api";

/** Messages that could not become jobs, newest first, each with a replay button (operators). */
export function DeadLetters({ me }: { me: Me }) {
  const [items, setItems] = useState<any[] | null>(null);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const load = () =>
    api("GET", "/api/dead-letters?limit=100")
      .then((r) => setItems(r.items))
      .catch((err) => setMessage({ ok: false, text: (err as Error).message }));
  useEffect(() => void load(), []);
  if (!can(me, "operator")) return <p class="empty">Dead letters need the operator role.</p>;
  const replay = async (id: string) => {
    try {
      await api("POST", `/api/dead-letters/${encodeURIComponent(id)}/replay`, {});
      setMessage({ ok: true, text: `Replayed ${id} to execute.queue.` });
      await load();
    } catch (err) {
      setMessage({ ok: false, text: (err as Error).message });
    }
  };
  return (
    <section>
      <h1>Dead letters</h1>
      {message && (
        <p class={message.ok ? "ok" : "error"} role="status">
          {message.text}
        </p>
      )}
      {items === null ? (
        <p class="loading">Loading…</p>
      ) : items.length === 0 ? (
        <p class="empty">No dead letters.</p>
      ) : (
        <table data-testid="dead-letters">
          <thead>
            <tr>
              <th>Received</th>
              <th>Source</th>
              <th>Reason</th>
              <th>Detail</th>
              <th>Body</th>
              <th>Replays</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((d) => (
              <tr data-letter={d.id}>
                <td>{fmtTime(d.receivedAt)}</td>
                <td>{d.source}</td>
                <td>{d.reason}</td>
                <td>{d.detail}</td>
                <td>
                  <code class="body">{d.body === null ? "(not kept)" : String(d.body).slice(0, 200)}</code>
                </td>
                <td>
                  {d.replayCount}
                  {d.replayedAt ? ` (last ${fmtTime(d.replayedAt)})` : ""}
                </td>
                <td>
                  <button disabled={d.body === null} onClick={() => void replay(d.id)}>
                    Replay
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
