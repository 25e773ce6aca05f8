/**
 * Issue 13 — a fallback launch kept the attempt's callback token, so the unheard first
 * worker (a RunTask whose answer was lost, after which the attempt moved to ec2) could still
 * fetch the job's secrets and report a result for the fallback.
 *
 * Tokens are bound to the launch key: the fallback launch (`<jobId>:<attempt>@ec2`) gets a
 * new token, and the first launch's token (`<jobId>:<attempt>`) stops working. The one-time
 * secrets fetch is one store transaction bound to the key (`takeSecrets`).
 *
 * FAILS ON MAIN: with the unheard fargate task's token, `GET /api/worker/secrets` answered
 * `200` with the job's token and `POST /api/worker/result` answered `200`
 * (`expected 403, received 200`).
 */
import { startAwsEmulator, useDummyAwsCredentials, type AwsEmulator } from "../../support/aws-emulator";
import { useAwsTargets } from "../../support/aws-node";
import { startNode, TestNode } from "../../support/orchestrator";
import { waitFor } from "../../support/wait";

let emu: AwsEmulator;
let node: TestNode;
const SECRET = "ghp_fallbackTokenCanary0123456789";

beforeAll(async () => {
  useDummyAwsCredentials();
  emu = await startAwsEmulator();
  node = await startNode({
    configure: (c) => {
      useAwsTargets(c, emu, { fargate: { launchPatienceMs: 1_000, maxAttempts: 1 } });
      c.routing.byType = { emulated: "fargate" };
      c.routing.fallback = { fargate: ["ec2"] };
    },
  });
});
afterAll(async () => {
  await node?.stop();
  await emu?.stop();
});

const envOfTask = (overrides: any): Record<string, string> =>
  Object.fromEntries((overrides?.containerOverrides?.[0]?.environment ?? []).map((e: { name: string; value: string }) => [e.name, e.value]));
const callbackOfUserData = (userData: string) => ({
  url: /BLACKTREE_CALLBACK_URL=([^']+)/.exec(userData)![1],
  token: /BLACKTREE_CALLBACK_TOKEN=([^']+)/.exec(userData)![1],
});
async function call(url: string, token: string, route: string, method = "POST", body: unknown = {}) {
  const res = await fetch(`${url}/${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: method === "POST" ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, text: await res.text() };
}

test("the unheard first launch's token neither fetches the secrets nor reports for the fallback; the fallback's own token does, once", async () => {
  emu.inject({ action: "RunTask", kind: "drop", times: 1_000 }); // the task is created, its answer lost: the attempt falls back to ec2
  const res = await node.http("POST", "/api/jobs", { type: "emulated", runMs: 60_000, token: SECRET, retry: { maxAttempts: 1 } });
  expect(res.status).toBe(202);
  const id = res.body.job.id;
  await waitFor(async () => (await node.http("GET", `/api/jobs/${id}`)).body?.attempts?.[0]?.target === "ec2", { message: "never fell back" });
  emu.clearFaults();
  const instance = await waitFor(() => emu.ec2.instancesTagged("blacktree.job", id)[0], { message: "no ec2 instance" });
  const fallback = callbackOfUserData(emu.ec2.userDataOf(instance.id));
  const [unheard] = emu.ecs.tasksTagged("blacktree.job", id);
  const first = envOfTask(emu.ecs.tasks.get(unheard)!.overrides);
  expect(first.BLACKTREE_CALLBACK_TOKEN).toBeTruthy();
  expect(first.BLACKTREE_CALLBACK_TOKEN).not.toBe(fallback.token);

  const stolen = await call(first.BLACKTREE_CALLBACK_URL, first.BLACKTREE_CALLBACK_TOKEN, "secrets", "GET");
  expect(stolen.text).not.toContain(SECRET);
  expect(stolen.status).toBe(403);
  expect((await call(first.BLACKTREE_CALLBACK_URL, first.BLACKTREE_CALLBACK_TOKEN, "result", "POST", { success: true })).status).toBe(403);
  expect((await call(first.BLACKTREE_CALLBACK_URL, first.BLACKTREE_CALLBACK_TOKEN, "started")).status).toBe(403);

  const own = await call(fallback.url, fallback.token, "secrets", "GET");
  expect(own.status).toBe(200);
  expect(JSON.parse(own.text)).toEqual({ secrets: { token: SECRET } });
  expect((await call(fallback.url, fallback.token, "secrets", "GET")).status).toBe(403); // once per launch key
  expect((await call(fallback.url, fallback.token, "started")).status).toBe(200);
  const history = (await node.http("GET", `/api/jobs/${id}`)).body.history;
  expect(history.filter((e: any) => e.kind === "attempt.secrets_fetched").map((e: any) => e.data.key)).toEqual([`${id}:1@ec2`]);
  await node.http("POST", `/api/jobs/${id}/cancel`);
});
