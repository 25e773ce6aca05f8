/**
 * Issue 13 — generated secret files: a read error other than "missing" fell through to a
 * create; an empty or corrupt file was used as it was (an empty callback secret or pepper
 * is an HMAC key anyone has); and an env-supplied callback secret or pepper of any length
 * was accepted.
 *
 * Now each is a start-up error naming the file or variable; only a missing file is generated.
 *
 * FAILS ON MAIN: the runtime started with an empty `callback.secret`, a corrupt
 * `api-keys.pepper`, `BLACKTREE_CALLBACK_SECRET=short` and `BLACKTREE_API_KEY_PEPPER=short`
 * (`expected a CONFIG_INVALID refusal, it started`), and a `callback.secret` that could not be
 * read (a directory) failed with a bare `EEXIST` from the attempted create.
 */
import fs from "node:fs";
import path from "node:path";
import { createRuntime } from "../../../lib/runtime";
import { ROOT, tempDir } from "../../support/orchestrator";

const env = (dataDir: string, extra: Record<string, string> = {}) => ({ PATH: process.env.PATH, DATA_DIR: dataDir, PLUGINS_CONFIG: path.join(ROOT, "plugins.config.json"), ...extra });

async function outcome(dataDir: string, extra: Record<string, string> = {}): Promise<{ started: true } | { type: string; message: string }> {
  try {
    const rt = await createRuntime({ env: env(dataDir, extra), cwd: ROOT });
    await rt.store.close();
    return { started: true };
  } catch (err: any) {
    return { type: err.type, message: String(err.message) };
  }
}

function dirWith(files: Record<string, string | "DIR">): string {
  const dir = tempDir();
  for (const [name, content] of Object.entries(files)) {
    if (content === "DIR") fs.mkdirSync(path.join(dir, name));
    else fs.writeFileSync(path.join(dir, name), content, { mode: 0o600 });
  }
  return dir;
}

test.each([
  ["an empty callback.secret", { "callback.secret": "" }, {}, /callback\.secret/],
  ["a corrupt callback.secret", { "callback.secret": "not a hex secret" }, {}, /callback\.secret/],
  ["an unreadable callback.secret (a directory)", { "callback.secret": "DIR" }, {}, /callback\.secret.*EISDIR/],
  ["an empty api-keys.pepper", { "api-keys.pepper": "\n" }, {}, /api-keys\.pepper/],
  ["a corrupt api-keys.pepper", { "api-keys.pepper": "zz" }, {}, /api-keys\.pepper/],
  ["an unreadable api-keys.pepper (a directory)", { "api-keys.pepper": "DIR" }, {}, /api-keys\.pepper.*EISDIR/],
  ["an empty secrets.key", { "secrets.key": "" }, {}, /secrets\.key/],
  ["a short BLACKTREE_CALLBACK_SECRET", {}, { BLACKTREE_CALLBACK_SECRET: "short" }, /BLACKTREE_CALLBACK_SECRET.*32/],
  ["a short BLACKTREE_API_KEY_PEPPER", {}, { BLACKTREE_API_KEY_PEPPER: "short" }, /BLACKTREE_API_KEY_PEPPER.*32/],
] as const)("%s is a start-up error naming it", async (_what, files, extra, named) => {
  const dir = dirWith(files as Record<string, string>);
  const r = await outcome(dir, extra as Record<string, string>);
  expect(r).toEqual({ type: "CONFIG_INVALID", message: expect.stringMatching(named) });
  // Nothing was generated over what could not be read.
  for (const [name, content] of Object.entries(files as Record<string, string>)) {
    if (content === "DIR") expect(fs.statSync(path.join(dir, name)).isDirectory()).toBe(true);
    else expect(fs.readFileSync(path.join(dir, name), "utf8")).toBe(content);
  }
});

test("missing files are generated once (mode 0600) and read back on the next start; long enough secrets from the environment are taken", async () => {
  const dir = tempDir();
  expect(await outcome(dir)).toEqual({ started: true });
  for (const f of ["callback.secret", "api-keys.pepper", "secrets.key"]) expect(fs.statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
  const secret = fs.readFileSync(path.join(dir, "callback.secret"), "utf8");
  expect(await outcome(dir)).toEqual({ started: true });
  expect(fs.readFileSync(path.join(dir, "callback.secret"), "utf8")).toBe(secret);
  expect(await outcome(tempDir(), { BLACKTREE_CALLBACK_SECRET: "c".repeat(32), BLACKTREE_API_KEY_PEPPER: "p".repeat(32) })).toEqual({ started: true });
});
