"use strict";
/**
 * Preload for `npm run bench -- --cpu-prof --only=pg` (never in a measured run): counts the
 * statements the node sends to PostgreSQL, by statement shape, with the time each waited
 * for its answer (round trip + server time), and how many transactions they made. SIGUSR2
 * starts the count afresh (the bench sends it after the warm-up); JSON goes to
 * $BENCH_PG_STATEMENTS when the process exits. Plain CommonJS so that
 * `node --require` loads it into `node dist/bin/blacktree.js`.
 */
const fs = require("node:fs");
const { Client } = require("pg");

const out = process.env.BENCH_PG_STATEMENTS;
const shapes = new Map();
let statements = 0;
let transactions = 0;
/** Clients inside BEGIN … COMMIT/ROLLBACK. */
const open = new WeakSet();

/** A statement's shape: whitespace collapsed, literals and $n kept, cut at 90 characters. */
function shapeOf(text) {
  return text.replace(/\s+/g, " ").trim().slice(0, 90);
}

function count(client, text, ms) {
  statements++;
  const shape = shapeOf(text);
  const s = shapes.get(shape) || { n: 0, ms: 0 };
  s.n++;
  s.ms += ms;
  shapes.set(shape, s);
  const head = shape.slice(0, 8).toUpperCase();
  if (head.startsWith("BEGIN")) open.add(client);
  else if (head.startsWith("COMMIT") || head.startsWith("ROLLBACK")) {
    open.delete(client);
    transactions++;
  } else if (!open.has(client)) transactions++; // autocommit: its own transaction
}

const query = Client.prototype.query;
Client.prototype.query = function (config, values, callback) {
  const text = typeof config === "string" ? config : config && config.text;
  if (typeof text !== "string" || typeof callback === "function" || typeof values === "function") return query.call(this, config, values, callback);
  const t0 = performance.now();
  const result = query.call(this, config, values);
  const done = () => count(this, text, performance.now() - t0);
  if (result && typeof result.then === "function") result.then(done, done);
  return result;
};

process.on("SIGUSR2", () => {
  shapes.clear();
  statements = 0;
  transactions = 0;
});

process.on("exit", () => {
  if (!out) return;
  const rows = [...shapes].map(([shape, s]) => ({ shape, n: s.n, ms: s.ms })).sort((a, b) => b.n - a.n);
  fs.writeFileSync(out, JSON.stringify({ statements, transactions, shapes: rows }));
});
