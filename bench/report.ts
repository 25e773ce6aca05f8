/** Collects the figures of one `npm run bench`, checks the goals, prints the table and writes bench/results/<stamp>.{json,md}. */
import fs from "node:fs";
import path from "node:path";
import { median } from "./stats";

export interface Figure {
  key: string;
  section: string;
  label: string;
  unit: string;
  /** One value per run; the figure is their median. */
  runs: number[];
  median: number;
  min: number;
  max: number;
  note?: string;
}

export interface Goal {
  name: string;
  /** What is compared, e.g. "intake ÷ raw consume+ack @ prefetch 32". */
  value: number | null;
  unit: string;
  target: string;
  met: boolean | null;
  detail: string;
}

export interface Machine {
  cores: number;
  cpu: string;
  memoryGb: number;
  node: string;
  loadStart: number[];
  loadEnd?: number[];
}

export class Results {
  readonly figures: Figure[] = [];
  readonly notes: string[] = [];
  goals: Goal[] = [];

  add(key: string, section: string, label: string, unit: string, runs: number[], note?: string): Figure {
    const clean = runs.filter((r) => Number.isFinite(r));
    const f: Figure = { key, section, label, unit, runs: clean, median: median(clean), min: Math.min(...clean), max: Math.max(...clean), note };
    this.figures.push(f);
    return f;
  }

  get(key: string): Figure | undefined {
    return this.figures.find((f) => f.key === key);
  }

  value(key: string): number | null {
    const f = this.get(key);
    return f && Number.isFinite(f.median) ? f.median : null;
  }
}

export function fmt(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const a = Math.abs(n);
  if (Math.round(a) >= 1000) return Math.round(n).toLocaleString("en-US");
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 0.1 || a === 0) return n.toFixed(2);
  return n.toPrecision(2);
}

/** The goals of the benchmark brief, from the medians. */
export function checkGoals(r: Results, opts: { prefetch: number; quick: boolean }): Goal[] {
  const goals: Goal[] = [];
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);
  const goal = (name: string, value: number | null, unit: string, target: string, ok: (v: number) => boolean, detail: string) =>
    goals.push({ name, value, unit, target, met: value === null ? null : ok(value), detail });

  const intake = r.value("intake.rate");
  const raw = r.value(`raw.consume.p${opts.prefetch}`);
  goal("intake ÷ raw consume+ack", ratio(intake, raw), "×", "≥ 0.5", (v) => v >= 0.5, `${fmt(intake)} ÷ ${fmt(raw)} msgs/s at prefetch ${opts.prefetch}`);
  const e2e = r.value("e2e.burst.rate");
  const bull = r.value("bullmq.burst.rate");
  goal("e2e ÷ BullMQ throughput", ratio(e2e, bull), "×", "≥ 1.0", (v) => v >= 1, `${fmt(e2e)} ÷ ${fmt(bull)} jobs/s, same burst`);
  const p99 = r.value("e2e.burst.p99");
  const bullP99 = r.value("bullmq.burst.p99");
  goal("e2e p99 vs BullMQ p99 (burst)", ratio(p99, bullP99), "×", "≤ 1.0", (v) => v <= 1, `${fmt(p99)} ms vs ${fmt(bullP99)} ms`);
  const one = r.value("e2e.one.p50");
  goal("one-job p50", one, "ms", "≤ 25 ms", (v) => v <= 25, `${fmt(one)} ms publish → legacy result`);
  const big = opts.quick ? "10k" : "100k";
  const rss = r.value(`scale.${big}.rss`);
  goal(`${big} queued RSS`, rss, "MB", "≤ 300 MB", (v) => v <= 300, `${fmt(rss)} MB VmRSS${opts.quick ? " (quick: 10k only)" : ""}`);
  const tick = r.value(`scale.${big}.tick.p99`);
  goal(`${big} queued tick p99`, tick, "ms", "≤ 50 ms", (v) => v <= 50, `${fmt(tick)} ms blacktree_clock_tick_seconds${opts.quick ? " (quick: 10k only)" : ""}`);
  const pgOne = r.value("pg.one.burst.rate");
  const pgTwo = r.value("pg.two.burst.rate");
  const graphile = r.value("pg.graphile.burst.rate");
  goal("PostgreSQL 1 node ÷ Graphile Worker throughput", ratio(pgOne, graphile), "×", "≥ 1.0", (v) => v >= 1, `${fmt(pgOne)} ÷ ${fmt(graphile)} jobs/s, same burst (2 back nodes: ${fmt(ratio(pgTwo, graphile))}×)`);
  const pgP50 = r.value("pg.one.one.p50");
  goal("PostgreSQL one-job p50", pgP50, "ms", "≤ 10 ms", (v) => v <= 10, `${fmt(pgP50)} ms publish → legacy result, 1 node (2 back nodes: ${fmt(r.value("pg.two.one.p50"))} ms; Graphile Worker add → completed: ${fmt(r.value("pg.graphile.one.p50"))} ms)`);
  goal("PostgreSQL 2 back nodes ÷ 1 node", ratio(pgTwo, pgOne), "×", "≥ 1.6", (v) => v >= 1.6, `${fmt(pgTwo)} ÷ ${fmt(pgOne)} jobs/s (SQLite 1 node: ${fmt(r.value("pg.sqlite.burst.rate"))} jobs/s)`);
  return goals;
}

const mark = (met: boolean | null) => (met === null ? "⚠️ not measured" : met ? "✅ met" : "❌ missed");

function figureRows(r: Results): string[][] {
  return r.figures.map((f) => [f.section, f.label, fmt(f.median), f.unit, `${fmt(f.min)} – ${fmt(f.max)}`, String(f.runs.length), f.note ?? ""]);
}

function goalRows(r: Results): string[][] {
  return r.goals.map((g) => [g.name, `${fmt(g.value)}${g.unit === "×" ? "×" : ` ${g.unit}`}`, g.target, mark(g.met), g.detail]);
}

const FIGURE_HEAD = ["section", "figure", "median", "unit", "min – max", "runs", "note"];
const GOAL_HEAD = ["goal", "value", "target", "", "from"];

function textTable(head: string[], rows: string[][]): string {
  const width = head.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...r[i]].length)));
  const line = (cells: string[]) => cells.map((c, i) => c + " ".repeat(width[i] - [...c].length)).join("  ").trimEnd();
  return [line(head), width.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function mdTable(head: string[], rows: string[][]): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`)].join("\n");
}

function machineLine(m: Machine): string {
  const load = (l?: number[]) => (l ? l.map((x) => x.toFixed(2)).join(" / ") : "—");
  return `${m.cores} cores (${m.cpu}), ${m.memoryGb} GB, Node ${m.node}; load average (1/5/15 min) at start ${load(m.loadStart)}, at end ${load(m.loadEnd)}`;
}

export function printReport(r: Results, m: Machine): void {
  console.log("");
  console.log(textTable(FIGURE_HEAD, figureRows(r)));
  console.log("");
  console.log(textTable(GOAL_HEAD, goalRows(r)));
  console.log("");
  console.log(machineLine(m));
  for (const n of r.notes) console.log(`⚠️ ${n}`);
}

/** `2026-01-31-2359` in local time. */
export function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}`;
}

export function writeReport(r: Results, m: Machine, meta: Record<string, unknown>, dir: string, name: string): { json: string; md: string } {
  fs.mkdirSync(dir, { recursive: true });
  const json = path.join(dir, `${name}.json`);
  const md = path.join(dir, `${name}.md`);
  fs.writeFileSync(json, JSON.stringify({ ...meta, machine: m, figures: r.figures, goals: r.goals, notes: r.notes }, null, 2) + "\n");
  const text = [
    `# Benchmark ${name}`,
    "",
    `${meta.mode === "quick" ? "Quick run" : "Full run"} of \`npm run bench\` on commit \`${meta.commit}\` (${meta.branch}).`,
    "",
    machineLine(m),
    "",
    "## Goals",
    "",
    mdTable(GOAL_HEAD, goalRows(r)),
    "",
    "## Figures (median of the runs, with min – max)",
    "",
    mdTable(FIGURE_HEAD, figureRows(r)),
    ...(r.notes.length ? ["", "## Notes", "", ...r.notes.map((n) => `- ${n}`)] : []),
    "",
  ].join("\n");
  fs.writeFileSync(md, text);
  return { json, md };
}
