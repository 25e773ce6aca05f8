/** Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the most self time. */
import fs from "node:fs";
import { SourceMap } from "node:module";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime {
  fn: string;
  where: string;
  ms: number;
  share: number;
}

const SPECIAL = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"]);

const maps = new Map<string, SourceMap | null>();

/** The TypeScript source position of a compiled position, through the `.js.map` beside it. */
function original(file: string, line: number, column: number): { file: string; line: number } | null {
  if (!maps.has(file)) {
    let map: SourceMap | null = null;
    try {
      map = new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, "utf8")));
    } catch {
      map = null;
    }
    maps.set(file, map);
  }
  const entry = maps.get(file)?.findEntry(line, column) as { originalSource?: string; originalLine?: number } | undefined;
  if (!entry?.originalSource) return null;
  return { file: path.resolve(path.dirname(file), entry.originalSource), line: entry.originalLine! };
}

/** `lib/store/…/x.ts:12` for the project's files (compiled positions mapped back), `node:…` and package files shortened. */
function where(url: string, line: number, column: number, root: string): string {
  if (!url) return "";
  let file = url.replace(/^file:\/\//, "");
  let l = line;
  const src = file.startsWith(root) ? original(file, line, column) : null;
  if (src) {
    file = src.file;
    l = src.line;
  }
  const project = path.dirname(root);
  const rel = file.includes("/node_modules/") ? file.slice(file.lastIndexOf("/node_modules/") + 14) : file.startsWith(project) ? path.relative(project, file) : file;
  return `${rel}:${l + 1}`;
}

/** Self time by function (name + file:line), most first; `(idle)`, `(program)` and GC apart. `root` is dist/. */
export function summarizeProfile(file: string, root: string, top = 10): { total: number; special: Record<string, number>; top: SelfTime[] } {
  const prof = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { fn: string; where: string; us: number }>();
  const special: Record<string, number> = {};
  let total = 0;
  prof.samples.forEach((id, i) => {
    const us = prof.timeDeltas[i] ?? 0;
    total += us;
    const cf = byId.get(id)!.callFrame;
    const fn = cf.functionName || "(anonymous)";
    if (SPECIAL.has(fn)) {
      special[fn] = (special[fn] ?? 0) + us / 1000;
      return;
    }
    const w = where(cf.url, cf.lineNumber, cf.columnNumber, root);
    const key = `${fn} ${w}`;
    const entry = self.get(key) ?? { fn, where: w, us: 0 };
    entry.us += us;
    self.set(key, entry);
  });
  const sorted = [...self.values()].sort((a, b) => b.us - a.us).slice(0, top);
  return { total: total / 1000, special, top: sorted.map((e) => ({ fn: e.fn, where: e.where, ms: e.us / 1000, share: e.us / total })) };
}

export function profileMarkdown(s: ReturnType<typeof summarizeProfile>, title: string): string {
  const rows = s.top.map((t, i) => `| ${i + 1} | \`${t.fn}\` | ${t.where || "(native)"} | ${t.ms.toFixed(0)} | ${(t.share * 100).toFixed(1)} % |`);
  const special = Object.entries(s.special).map(([k, v]) => `${k} ${v.toFixed(0)} ms (${((v / s.total) * 100).toFixed(1)} %)`).join(", ");
  return [`# ${title}`, "", `Profile of ${(s.total / 1000).toFixed(1)} s; ${special}.`, "", "| # | function | where | self ms | share |", "|---|---|---|---|---|", ...rows, ""].join("\n");
}
