/**
 * Jest global setup: child processes (reference workers, worker nodes, the entry point
 * run by tsx from another directory) load @blacktree/sdk as a package, i.e. its build in
 * packages/sdk/dist. Rebuild it when a source file is newer than the build (or it is
 * missing), so they never run a stale SDK. ~3 s when needed, nothing otherwise.
 */
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const SDK = path.resolve(__dirname, "../../packages/sdk");

function newest(dir, ext) {
  let t = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) t = Math.max(t, newest(p, ext));
    else if (entry.name.endsWith(ext)) t = Math.max(t, fs.statSync(p).mtimeMs);
  }
  return t;
}

module.exports = async function globalSetup() {
  const dist = path.join(SDK, "dist");
  const sources = Math.max(newest(path.join(SDK, "src"), ".ts"), fs.statSync(path.join(SDK, "tsconfig.json")).mtimeMs);
  if (fs.existsSync(path.join(dist, "index.js")) && newest(dist, ".js") >= sources) return;
  process.stdout.write("🔄 building @blacktree/sdk (packages/sdk/dist is older than its sources)\n");
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(SDK, "tsconfig.json")], { stdio: "inherit" });
};
