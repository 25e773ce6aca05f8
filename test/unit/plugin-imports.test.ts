import fs from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import ts from "typescript";

/**
 * The built-ins are written as a third party would: every file under plugins/ imports only
 * the public SDK (`@blacktree/sdk` and its `/testkit`, `/worker` entries), Node's own
 * modules, the third-party libraries a built-in declares below, and files of plugins/
 * itself — never lib/, services/, the orchestrator package, Moleculer or another internal.
 */
const ROOT = path.resolve(__dirname, "../..");
const PLUGINS = path.join(ROOT, "plugins");
const SDK_ENTRIES = new Set(["@blacktree/sdk", "@blacktree/sdk/testkit", "@blacktree/sdk/worker"]);
/** Libraries the built-in targets use (each also a dependency of the root package). */
const PLUGIN_LIBRARIES = new Set(["dockerode", "@aws-sdk/client-ecs", "@aws-sdk/client-ec2", "@aws-sdk/client-ecr"]);
const BUILTINS = new Set(builtinModules);

/** Every module a source text imports (static, `export … from`, `require`, dynamic `import()`). */
function importsOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

/** What is wrong with one import of `file`, or null. */
function violation(file: string, spec: string): string | null {
  if (spec.startsWith(".")) {
    const target = path.resolve(path.dirname(file), spec);
    return target === PLUGINS || target.startsWith(PLUGINS + path.sep) ? null : `reaches outside plugins/ (${path.relative(ROOT, target)})`;
  }
  if (spec.startsWith("node:") || BUILTINS.has(spec)) return null;
  if (SDK_ENTRIES.has(spec)) return null;
  if (spec.startsWith("@blacktree/sdk")) return "imports a private path of the SDK package (only @blacktree/sdk, /testkit and /worker are public)";
  if (PLUGIN_LIBRARIES.has(spec)) return null;
  return "imports a module that is neither the public SDK, Node, nor a declared plugin library";
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|js|mjs|cjs)$/.test(e.name) ? [p] : [];
  });
}

describe("the built-in plugins import only the public SDK", () => {
  const files = sourceFiles(PLUGINS);

  test("every import of every file under plugins/ is allowed", () => {
    expect(files.length).toBeGreaterThan(40); // all of them: task types, targets, reference workers
    const found = files.flatMap((file) =>
      importsOf(fs.readFileSync(file, "utf8"))
        .map((spec) => ({ spec, why: violation(file, spec) }))
        .filter((v) => v.why !== null)
        .map((v) => `${path.relative(ROOT, file)}: '${v.spec}' ${v.why}`),
    );
    expect(found).toEqual([]);
  });

  test("the built-ins do use the SDK package (the check sees their imports)", () => {
    const users = files.filter((file) => importsOf(fs.readFileSync(file, "utf8")).some((spec) => SDK_ENTRIES.has(spec)));
    for (const dir of ["task-types/build", "task-types/deploy", "task-types/stop", "task-types/test", "targets/process", "targets/docker", "targets/pool", "targets/fargate", "targets/ec2", "workers"]) {
      expect(users.some((f) => f.startsWith(path.join(PLUGINS, dir) + path.sep))).toBe(true);
    }
  });

  test("the check refuses internals, Moleculer, the orchestrator package and private SDK paths", () => {
    const file = path.join(PLUGINS, "targets/acme/index.ts");
    const text = [
      'import { blacktreeError } from "../../../lib/errors";',
      'import type { ServiceBroker } from "moleculer";',
      'export { x } from "blacktree-orchestrator/sdk";',
      'const v = require("fastest-validator");',
      'const w = import("../../../workers/index");',
      'import { poll } from "@blacktree/sdk/dist/testkit/poll";',
      'import { definePlugin } from "@blacktree/sdk";',
      'import fs from "node:fs";',
      'import { spawn } from "child_process";',
      'import Docker from "dockerode";',
      'import { shared } from "../aws-shared/aws-errors";',
    ].join("\n");
    const bad = importsOf(text).filter((spec) => violation(file, spec) !== null);
    expect(bad).toEqual(["../../../lib/errors", "moleculer", "blacktree-orchestrator/sdk", "fastest-validator", "../../../workers/index", "@blacktree/sdk/dist/testkit/poll"]);
  });

  test("each library the built-ins may use is a dependency of the package that ships them", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    for (const lib of [...PLUGIN_LIBRARIES, "@blacktree/sdk"]) expect(Object.keys(pkg.dependencies)).toContain(lib);
  });
});
