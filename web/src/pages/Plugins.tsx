import { useEffect, useState } from "preact/hooks";
import { api, can, Me } from "../api";
import { Json } from "./common";

/** Loaded plugins, task types (with their params) and launch targets (GET /api/plugins, admin). */
export function Plugins({ me }: { me: Me }) {
  const [info, setInfo] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (can(me, "admin")) api("GET", "/api/plugins").then(setInfo, (err) => setError((err as Error).message));
  }, []);
  if (!can(me, "admin")) return <p class="empty">Plugins need the admin role.</p>;
  if (error) return <p class="error">{error}</p>;
  if (!info) return <p class="loading">Loading…</p>;
  return (
    <section>
      <h1>Plugins</h1>
      <table data-testid="plugins">
        <thead>
          <tr>
            <th>Plugin</th>
            <th>Version</th>
            <th>API</th>
            <th>Source</th>
          </tr>
        </thead>
        <tbody>
          {info.plugins.map((p: any) => (
            <tr>
              <td>{p.name}</td>
              <td>{p.version}</td>
              <td>{p.apiVersion}</td>
              <td>
                <code>{typeof p.source === "string" ? p.source : JSON.stringify(p.source)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Targets</h2>
      <ul class="chips" data-testid="targets">
        {info.targets.map((t: any) => (
          <li title={`from ${t.plugin}`}>{t.name}</li>
        ))}
      </ul>
      <h2>Task types</h2>
      {info.taskTypes.map((t: any) => (
        <details class="card">
          <summary>
            <strong>{t.name}</strong> <span class="hint">from {t.plugin}</span>
            {t.defaults?.target ? <span class="hint"> · target {t.defaults.target}</span> : null}
          </summary>
          <Json value={t.params} />
        </details>
      ))}
    </section>
  );
}
