import { ChildProcess } from "node:child_process";
import { killHard, prepareEntryPoint, startEntryPoint } from "../support/entry-point";

/** The embedded store is one node's: a second process on the same data directory refuses to start, naming why. */
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) await killHard(c);
});

test("a second node on one SQLite data directory exits non-zero with a clear error; after a kill -9 of the first, a new one starts", async () => {
  const setup = await prepareEntryPoint();
  const first = startEntryPoint(setup.env);
  children.push(first);
  await setup.healthy();

  const second = startEntryPoint({ ...setup.env, PORT: "0" });
  children.push(second);
  let stderr = "";
  second.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => second.once("exit", resolve));
  expect(code).not.toBe(0);
  expect(stderr).toMatch(/Another orchestrator node already uses the data directory/);

  // The lock dies with its process, however it ends: a restart does not wait for it.
  await killHard(first);
  const third = startEntryPoint(setup.env);
  children.push(third);
  await setup.healthy("the node after the crash did not start");
});

test("a node with SQLite refuses a transporter on which another orchestrator node already runs", async () => {
  const namespace = `bt-sqlite-${process.pid}-${Date.now()}`;
  const transporter = { TRANSPORTER: process.env.TEST_TRANSPORTER ?? "nats://127.0.0.1:4222", NAMESPACE: namespace };
  const a = await prepareEntryPoint({ env: transporter });
  const first = startEntryPoint(a.env);
  children.push(first);
  await a.healthy();

  const b = await prepareEntryPoint({ env: transporter });
  const second = startEntryPoint(b.env);
  children.push(second);
  let output = "";
  second.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  second.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => second.once("exit", resolve));
  expect(code).not.toBe(0);
  expect(output).toMatch(/already runs an orchestrator on this transporter; this node's store is SQLite/);
  // The first node goes on.
  await a.healthy("the first node stopped");
});
