#!/usr/bin/env node
import { runCli } from "../lib/cli";

/**
 * `blacktree`: the CLI (lib/cli). With no command it starts the node, as `npm start` and the
 * container image have always run this file.
 */
const argv = process.argv.slice(2);
const serve = async () => (await import("./serve")).serve();

if (argv.length === 0) {
  void serve();
} else {
  const interrupt = new AbortController();
  // The first Ctrl-C stops a watch cleanly (exit 130); a second one is the default: exit at once.
  process.once("SIGINT", () => interrupt.abort());
  runCli(argv, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }, { signal: interrupt.signal, serve }).then(
    (code) => {
      if (code !== null) process.exit(code);
    },
    (err) => {
      process.stderr.write(`❌ ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
