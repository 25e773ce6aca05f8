import type { ChildProcess } from "node:child_process";
import { containersWithLabel, ensureTestImage, removeContainersWithLabel } from "../support/docker";
import { killHard, prepareEntryPoint, startEntryPoint } from "../support/entry-point";
import { tempDir } from "../support/orchestrator";
import { waitFor } from "../support/wait";
import { bareRepository, ensureWorkerImage, pushBaseImage, startRegistry, type LocalRegistry } from "../support/worker-image";

/**
 * kill -9 of the real orchestrator while a build runs in the worker container: after the
 * restart the container is adopted (one container, one attempt), its push lands once and
 * exactly one result is published — the one whose digest the registry serves.
 */
const labelPrefix = `bt-h11a-r${process.pid}`;
const FINAL = ["succeeded", "failed", "timed_out", "cancelled"];
let orchestrator: ChildProcess | undefined;
let registry: LocalRegistry;

beforeAll(() => ensureTestImage(), 120_000);
afterAll(async () => {
  if (orchestrator) await killHard(orchestrator);
  removeContainersWithLabel(`${labelPrefix}.key`);
  await registry?.stop();
});

test("kill -9 mid-build, restart: the worker container is adopted and one result is published", async () => {
  const workerImage = ensureWorkerImage();
  registry = await startRegistry();
  const base = pushBaseImage(registry);
  const dir = tempDir("bt-h11a-restart-");
  // The RUN step keeps the build going across the orchestrator's downtime.
  const repo = bareRepository(dir, { main: `FROM ${base}\nRUN echo building && sleep 10 && echo slept > /slept.txt\n` });
  const setup = await prepareEntryPoint({
    configure: (c) => {
      c.plugins.push({
        use: "./plugins/targets/docker",
        config: { network: "host", stopGraceMs: 2_000, labelPrefix, workerImage, workerSecurityOpt: ["seccomp=unconfined"], workerBinds: [`${dir}:${dir}:ro`], registry: { url: registry.host, insecure: true } },
      });
      c.routing.byType.build = "docker";
    },
  });
  orchestrator = startEntryPoint(setup.env);
  await setup.healthy();
  const id = await setup.submit({ type: "build", deploymentId: "bt-h11a-restart", repository: repo });
  const lines = async () => ((await setup.get(`/api/jobs/${id}/logs`)).attempts ?? []).flatMap((a: any) => a.lines ?? []) as string[];
  await waitFor(async () => (await lines()).some((l) => l.includes("building")), { timeout: 120_000, interval: 200, message: "the build's RUN step started" });
  const [container] = containersWithLabel(`${labelPrefix}.job=${id}`, { all: false });
  expect(container).toBeDefined();

  await killHard(orchestrator);
  orchestrator = startEntryPoint(setup.env);
  await setup.healthy("orchestrator did not restart");

  const done = await waitFor(
    async () => {
      const j = await setup.get(`/api/jobs/${id}`);
      return FINAL.includes(j.job.state) ? j : null;
    },
    { timeout: 120_000, interval: 250, message: "the build finished after the restart" },
  );
  expect(done.job.state).toBe("succeeded");
  expect(done.attempts).toHaveLength(1);
  expect(done.attempts[0].handle.id).toBe(container);
  expect(containersWithLabel(`${labelPrefix}.job=${id}`)).toEqual([container]); // adopted, never a second one
  const results = done.history.filter((e: any) => e.kind === "attempt.result");
  expect(results).toHaveLength(1);
  expect(done.history.filter((e: any) => e.kind === "job.succeeded")).toHaveLength(1);
  const [, repository, tag, digest] = /^[^/]+\/(.+):([^:@]+)@(sha256:[a-f0-9]{64})$/.exec(done.job.result.imageUrl)!;
  expect(results[0].data.imageUrl).toBe(done.job.result.imageUrl);
  expect(await registry.manifestDigest(repository, tag)).toBe(digest);
}, 400_000);
