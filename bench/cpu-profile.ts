/** Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the most self time. */
import fs from "node:fs";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
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

function where(url: string, line: number, root: string): string {
  if (!url) return "";
  const file = url.replace(/^file:\/\//, "");
  const rel = file.startsWith(root) ? path.relative(root, file) : file.startsWith("node:") ? file : path.basename(file);
  return `${rel}:${line + 1}`;
}

/** Self time by function (name + file:line), most first; `(idle)`, `(program)` and GC apart. */
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
    const w = where(cf.url, cf.lineNumber, root);
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
