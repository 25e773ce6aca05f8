import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, can, Me, session } from "./api";
import { Jobs } from "./pages/Jobs";
import { JobPage } from "./pages/Job";
import { DeadLetters } from "./pages/DeadLetters";
import { Plugins } from "./pages/Plugins";
import { Activity } from "./pages/Activity";
import "./style.css";

/** `#/jobs/abc?x=1` → ["jobs", "abc"] and { x: "1" }: hash routes, so the server serves one file. */
function parseHash(hash: string): { parts: string[]; params: Record<string, string> } {
  const [path, q = ""] = hash.replace(/^#\/?/, "").split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: Object.fromEntries(new URLSearchParams(q)) };
}

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return parseHash(hash);
}

function KeyForm({ onMe }: { onMe: (me: Me) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const me = await api<Me>("GET", "/api/whoami", undefined, key.trim());
      session.set(key.trim());
      setKey("");
      onMe(me);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? "This key is not valid." : `Cannot sign in: ${(err as Error).message}`);
    }
  };
  return (
    <main class="signin">
      <h1>Blacktree Orchestrator</h1>
      <form onSubmit={submit} class="card">
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autocomplete="off" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} required />
        <button type="submit">Sign in</button>
        <p class="hint">Kept for this browser tab only (session storage); closing the tab forgets it.</p>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
    </main>
  );
}

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(!!session.key());
  const route = useHash();
  useEffect(() => {
    if (!session.key()) return;
    api<Me>("GET", "/api/whoami")
      .then(setMe)
      .catch(() => session.clear())
      .finally(() => setChecking(false));
  }, []);
  if (checking) return <p class="loading">Loading…</p>;
  if (!me) return <KeyForm onMe={setMe} />;
  const signOut = () => {
    session.clear();
    setMe(null);
  };
  const [page, id] = route.parts;
  let body;
  if (page === "jobs" && id) body = <JobPage key={id} me={me} id={id} />;
  else if (page === "dead-letters") body = <DeadLetters me={me} />;
  else if (page === "plugins") body = <Plugins me={me} />;
  else if (page === "activity") body = <Activity />;
  else body = <Jobs me={me} params={route.params} />;
  const nav = (href: string, label: string, active: boolean) => (
    <a href={href} class={active ? "active" : ""}>
      {label}
    </a>
  );
  return (
    <>
      <header>
        <strong>Blacktree</strong>
        <nav>
          {nav("#/jobs", "Jobs", !page || page === "jobs")}
          {nav("#/activity", "Activity", page === "activity")}
          {can(me, "operator") && nav("#/dead-letters", "Dead letters", page === "dead-letters")}
          {can(me, "admin") && nav("#/plugins", "Plugins", page === "plugins")}
        </nav>
        <span class="me" data-testid="me">
          {me.name} · <span class="role">{me.role}</span>
        </span>
        <button class="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>{body}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
