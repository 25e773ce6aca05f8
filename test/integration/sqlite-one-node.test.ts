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
