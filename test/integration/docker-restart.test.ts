import { ChildProcess, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { loadPluginsConfig } from "../../lib/config/plugins-config";
import { containersWithLabel, ensureTestImage, removeContainersWithLabel } from "../support/docker";
import { withDocker } from "../support/docker-config";
import { killHard, startEntryPoint } from "../support/entry-point";
import { authHeader, freePort, ROOT, tempDir } from "../support/orchestrator";
import { waitFor } from "../support/wait";

/**
 * kill -9 of the real entry point while containers run: after the restart the containers
 * are adopted by name and label (never a second one per job) and their jobs finish.
 */
const labelPrefix = `btrestart${process.pid}`;
/** Each job waits for a gate file the test creates inside its container with `docker exec` (no network needed). */
const GATED = "while [ ! -e /tmp/gate ]; do sleep 0.1; done; echo passed-the-gate";
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];

let orchestrator: ChildProcess | undefined;
beforeAll(() => ensureTestImage(), 120_000);
afterAll(async () => {
  if (orchestrator) await killHard(orchestrator);
  removeContainersWithLabel(`${labelPrefix}.key`);
});

test("kill -9 while containers run, restart: the containers are adopted, not duplicated, and their jobs finish", async () => {
  const dataDir = tempDir("blacktree-docker-restart-");
  const configFile = path.join(dataDir, "plugins.config.json");
  const config = withDocker(loadPluginsConfig(path.join(ROOT, "plugins.config.json"), {}, "development"), labelPrefix);
  // The file form of the config: the policy block is chosen by mode again on load.
  const shipped = JSON.parse(fs.readFileSync(path.join(ROOT, "plugins.config.json"), "utf8"));
  fs.writeFileSync(configFile, JSON.stringify({ ...shipped, plugins: config.plugins, routing: config.routing }));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { DATA_DIR: path.join(dataDir, "data"), PORT: String(port), HOST: "127.0.0.1", PLUGINS_CONFIG: configFile, LOG_LEVEL: "warn", RECONCILE_INTERVAL_MS: "200", DISPATCH_INTERVAL_MS: "200" };
  const get = async (route: string) => (await fetch(url + route, { headers: authHeader() })).json() as Promise<any>;
  const healthy = () => fetch(`${url}/health`).then((r) => r.ok, () => false);
  const openGate = (containerId: string) => execFileSync("docker", ["exec", containerId, "touch", "/tmp/gate"]);
  const containersOf = (id: string, all = true) => containersWithLabel(`${labelPrefix}.job=${id}`, { all });

  orchestrator = startEntryPoint(env);
  await waitFor(healthy, { timeout: 60_000, message: "orchestrator did not start" });
  const ids: string[] = [];
  for (const dep of ["crash-a", "crash-b"]) {
    const res = await fetch(`${url}/api/jobs`, { method: "POST", headers: authHeader(), body: JSON.stringify({ type: "container-script", deploymentId: dep, script: GATED }) });
    expect(res.status).toBe(202);
    ids.push(((await res.json()) as any).job.id);
  }
  const before = await waitFor(async () => {
    const jobs = await Promise.all(ids.map((id) => get(`/api/jobs/${id}`)));
    return jobs.every((j) => j.job.state === "running") ? jobs : null;
  }, { timeout: 60_000, message: "both jobs running in containers" });
  const containerIds = before.map((j) => j.attempts[0].handle.id as string);

  await killHard(orchestrator);
  for (const id of ids) expect(containersOf(id, false)).toHaveLength(1); // containers outlive the node
  openGate(containerIds[0]); // job A ends while nobody watches; job B is still running at the restart

  orchestrator = startEntryPoint(env);
  await waitFor(healthy, { timeout: 60_000, message: "orchestrator did not restart" });
  const b = await get(`/api/jobs/${ids[1]}`);
  expect(b.job.state).toBe("running");
  openGate(containerIds[1]);

  const finals = await waitFor(async () => {
    const jobs = await Promise.all(ids.map((id) => get(`/api/jobs/${id}`)));
    return jobs.every((j) => FINAL.includes(j.job.state)) ? jobs : null;
  }, { timeout: 60_000, message: "both jobs finished after the restart" });
  finals.forEach((j, i) => {
    expect(j.job.state).toBe("succeeded");
    expect(j.attempts).toHaveLength(1);
    expect(j.attempts[0].handle.id).toBe(containerIds[i]);
    expect(containersOf(ids[i])).toEqual([containerIds[i]]); // one container per job, ever
  });
  const logs = await get(`/api/jobs/${ids[1]}/logs`);
  expect(logs.attempts[0].lines).toContain("passed-the-gate");
}, 180_000);
