/**
 * Issue 13 — dead-letter redaction removed only a top-level `token`: arrays, nested objects,
 * the task type's other `secretFields`, and a body cut at 64 KiB mid-token all kept the
 * secret (and a rejected job's params kept every secret but a top-level `token`).
 *
 * Bodies are redacted structurally (every secret-named key at any depth, the loaded task
 * types' `secretFields` included) before any truncation; a body that cannot be parsed and so
 * cannot be redacted (not JSON, too large, too deep) is never stored nor forwarded: the dead
 * letter keeps its size, hash and reason instead.
 *
 * FAILS ON MAIN: the secrets were found in the stored dead letters, the execute.dlq copies and
 * the rejected job's params (`expected 0 hits, received …` for each place).
 */
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import Database from "better-sqlite3";
import { DEAD_LETTER_QUEUE } from "../../../lib/amqp/topology";
import { BackendClient } from "../../support/amqp";
import { useInstantTarget } from "../../support/instant";
import { startNode, TestNode } from "../../support/orchestrator";
import { createVhost, TestVhost } from "../../support/vhost";
import { waitFor } from "../../support/wait";

const VAULT_PLUGIN = path.join(__dirname, "../../support/plugins/vault-plugin.ts");
const MAX_BYTES = 4096;
let vhost: TestVhost;
let backend: BackendClient;
let node: TestNode;
const secret = (label: string) => `ghp_${label}${randomBytes(16).toString("hex")}`;
const S = { array: secret("Array"), nested: secret("Nested"), other: secret("Other"), rejected: secret("Rejected"), cut: secret("Cut"), broken: secret("Broken") };

beforeAll(async () => {
  vhost = createVhost("dl-redaction");
  backend = await BackendClient.connect("test-dl-redaction", vhost.url);
  node = await startNode({
    env: { AMQP_URL: vhost.url, AMQP_MAX_MESSAGE_BYTES: String(MAX_BYTES) },
    configure: (c) => {
      useInstantTarget(c);
      c.plugins.push({ use: VAULT_PLUGIN });
    },
  });
});
afterAll(async () => {
  try {
    await node?.stop();
    await backend?.close();
  } finally {
    vhost?.remove();
  }
});

test("no secret survives in a dead letter, its execute.dlq copy or a rejected job, however it is placed", async () => {
  // A token straddling the 64 KiB cut of an oversized body.
  const head = '{"deploymentId":"cut","pad":"';
  const cutBody = head + "x".repeat(64 * 1024 - head.length - 20) + `","token":"${S.cut}"}`;
  const brokenBody = `{"deploymentId":"broken","token":"${S.broken}`;
  const messages: Array<[string, string]> = [
    ["array", JSON.stringify([{ deploymentId: "arr", token: S.array }, [{ password: S.array }]])],
    ["nested", JSON.stringify({ repository: "a/b", nested: { token: S.nested }, list: [{ deep: { apiToken: S.nested } }] })],
    ["other", JSON.stringify({ type: "vault", registryPassword: S.other })],
    ["rejected", JSON.stringify({ type: "vault", deploymentId: "rej", registryPassword: S.rejected, token: S.rejected, bogus: { secret: S.rejected } })],
    ["cut", cutBody],
    ["broken", brokenBody],
  ];
  for (const [id, text] of messages) backend.publishJob(text, { messageId: `dl-${id}` });
  await backend.confirmed();

  await waitFor(async () => (await node.rt.store.listDeadLetters(100)).length === 5, { message: "five dead letters" });
  await waitFor(() => node.rt.store.getJob("dl-rejected"), { message: "the rejected job" });
  const dlq = await waitFor(async () => {
    const got = await backend.drain(DEAD_LETTER_QUEUE);
    return got.length ? got : null;
  }, { message: "execute.dlq copies" });
  while (dlq.length < 5) dlq.push(...(await backend.drain(DEAD_LETTER_QUEUE)));

  const db = new Database(path.join(node.dataDir, "blacktree.db"), { readonly: true });
  const rows: string[] = [];
  try {
    for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>) rows.push(JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all()));
  } finally {
    db.close();
  }
  const places = {
    rest: (await node.http("GET", "/api/dead-letters")).text + (await node.http("GET", "/api/jobs/dl-rejected")).text,
    rows: rows.join("\n"),
    dlq: dlq.map((m) => m.body + JSON.stringify(m.headers)).join("\n"),
  };
  for (const [label, value] of Object.entries(S)) {
    for (const [where, text] of Object.entries(places)) {
      // Not even a prefix: a cut must not keep the first half of a token.
      expect({ label, where, hits: text.split(value.slice(0, 16)).length - 1 }).toEqual({ label, where, hits: 0 });
    }
  }

  const letters = new Map((await node.rt.store.listDeadLetters(100)).map((l) => [l.properties.messageId, l]));
  // What parsed is kept, redacted: the rest of the message is still there to read.
  expect(letters.get("dl-nested")!.body).toContain('"repository":"a/b"');
  expect(letters.get("dl-array")!.reason).toBe("NOT_AN_OBJECT");
  // What could not be parsed is not kept: its size, hash and reason are.
  for (const [id, text, reason] of [["dl-cut", cutBody, "TOO_LARGE"], ["dl-broken", brokenBody, "NOT_JSON"]] as const) {
    const l = letters.get(id)!;
    expect(l.reason).toBe(reason);
    expect(l.body).toBe("");
    expect(l.properties).toMatchObject({ bodyKept: false, bodyBytes: Buffer.byteLength(text), bodySha256: createHash("sha256").update(text).digest("hex") });
  }
  const view = (await node.http("GET", "/api/dead-letters")).body.items.find((l: any) => l.id === letters.get("dl-broken")!.id);
  expect(view.body).toBeNull();
  expect((await node.http("POST", `/api/dead-letters/${view.id}/replay`)).status).toBe(409);
  const rejected = (await node.http("GET", "/api/jobs/dl-rejected")).body.job;
  expect(rejected.state).toBe("rejected");
  expect(rejected.params).not.toHaveProperty("registryPassword");
  expect(rejected.params).not.toHaveProperty("token");
});
