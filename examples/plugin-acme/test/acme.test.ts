import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "@jest/globals";
import type { PluginContext } from "@blacktree/sdk";
import { poll, runTaskType, targetConformance } from "@blacktree/sdk/testkit";
import plugin, { acmeReport } from "../src";

const quiet = () => undefined;
const context = (): PluginContext => ({ logger: { info: quiet, warn: quiet, error: quiet, debug: quiet }, dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "acme-")), mode: "development", policy: {} });
const sh = (script: string) => ({ command: ["/bin/sh", "-c", script], env: {} });

describe("the acme-report task type", () => {
  test("applies its schema and defaults, takes the secret out, and runs its worker", async () => {
    const run = await runTaskType(acmeReport, { type: "acme-report", deploymentId: "shop", title: "  Weekly ", lines: "2", webhookToken: "tok-12345" });
    expect(run.job.params).toEqual({ deploymentId: "shop", title: "Weekly", lines: 2, notify: false });
    expect(run.secrets).toEqual({ webhookToken: "tok-12345" });
    expect(run.workload).toMatchObject({ env: { ACME_TITLE: "Weekly", ACME_LINES: "2" }, secrets: ["webhookToken"] });
    expect(run.concurrencyKey).toBe("acme:shop");
    expect(run.followUps({ success: true, lines: 2 })).toEqual([]);

    // The workload really runs on the acme target (no orchestrator: the worker only logs and exits 0).
    const target = plugin.targets![0]();
    const ctx = context();
    await target.init!({ stopGraceMs: 1_000, logLines: 100 }, ctx);
    const workload = { ...run.workload, env: { ...run.workload.env, BLACKTREE_JOB_ID: "job_1", BLACKTREE_ATTEMPT: "1" } };
    const handle = await target.launch({ jobId: "job_1", attempt: 1, key: "job_1:1", workload, labels: {} }, ctx);
    const st = await poll(
      async () => {
        const [s] = await target.inspect([handle], ctx);
        return s.state === "exited" ? s : null;
      },
      { timeout: 30_000, message: "the worker ended" },
    );
    expect(st).toEqual({ key: "job_1:1", state: "exited", exitCode: 0 });
    const lines: string[] = [];
    for await (const line of target.logs!(handle, ctx)) lines.push(line);
    expect(lines).toContain("📄 Weekly: line 2 of 2 (job job_1, attempt 1)");
    await target.close!();
  });

  test("refuses bad fields, naming them; notify makes a follow-up", async () => {
    await expect(runTaskType(acmeReport, { deploymentId: "shop", lines: 0 })).rejects.toMatchObject({ type: "VALIDATION_FAILED", data: { fields: [expect.objectContaining({ field: "lines" })] } });
    await expect(runTaskType(acmeReport, { deploymentId: "shop", title: "a\u0007b" })).rejects.toMatchObject({ type: "VALIDATION_FAILED", data: { fields: [expect.objectContaining({ field: "title" })] } });
    const run = await runTaskType(acmeReport, { deploymentId: "shop", notify: true }, { id: "job_7" });
    expect(run.followUps({ success: true, lines: 3 })).toEqual([{ type: "acme-report", deploymentId: "shop", title: "Report: 3 lines", lines: 1, idempotencyKey: "job_7.notify" }]);
  });
});

targetConformance("acme", async () => {
  const target = plugin.targets![0]();
  const ctx = context();
  await target.init!({ stopGraceMs: 1_000, logLines: 100 }, ctx);
  return {
    target,
    ctx,
    stopGraceMs: 1_000,
    workload: (kind) =>
      ({
        exit0: sh("echo conformance; exit 0"),
        exit3: sh("exit 3"),
        sleep: sh("sleep 300"),
        ignoreTerm: sh("trap '' TERM; echo ready; while :; do sleep 1; done"),
      })[kind],
    invalidWorkload: () => ({ command: ["/nonexistent/acme-worker"], env: {} }),
    teardown: () => target.close!(),
  };
});
