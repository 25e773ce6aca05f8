/** Reads the Prometheus text format of `GET /metrics`: sample values and histograms. */

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: m[3] === "+Inf" ? Infinity : Number(m[3]) });
  }
  return out;
}

const matches = (s: Sample, labels: Record<string, string>) => Object.entries(labels).every(([k, v]) => s.labels[k] === v);

/** Sum of the samples of `name` whose labels include `labels`; null when there is none. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | null {
  const found = parseMetrics(text).filter((s) => s.name === name && matches(s, labels));
  return found.length ? found.reduce((a, s) => a + s.value, 0) : null;
}

export interface Histogram {
  /** Cumulative counts by upper bound, ascending, ending with +Inf. */
  buckets: Array<[number, number]>;
  sum: number;
  count: number;
}

/** The histogram `name` (all label sets added up); null when the node does not export it. */
export function histogram(text: string, name: string): Histogram | null {
  const samples = parseMetrics(text);
  const byLe = new Map<number, number>();
  for (const s of samples) if (s.name === `${name}_bucket`) byLe.set(Number(s.labels.le === "+Inf" ? Infinity : s.labels.le), (byLe.get(Number(s.labels.le === "+Inf" ? Infinity : s.labels.le)) ?? 0) + s.value);
  if (!byLe.size) return null;
  const sum = samples.filter((s) => s.name === `${name}_sum`).reduce((a, s) => a + s.value, 0);
  const count = samples.filter((s) => s.name === `${name}_count`).reduce((a, s) => a + s.value, 0);
  return { buckets: [...byLe.entries()].sort((a, b) => a[0] - b[0]), sum, count };
}

/** What was observed between two scrapes of one histogram. */
export function histogramDelta(before: Histogram | null, after: Histogram): Histogram {
  if (!before) return after;
  const prev = new Map(before.buckets);
  return { buckets: after.buckets.map(([le, c]) => [le, c - (prev.get(le) ?? 0)]), sum: after.sum - before.sum, count: after.count - before.count };
}

/** Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q·count. */
export function histogramQuantile(h: Histogram, q: number): number {
  if (h.count <= 0) return NaN;
  const rank = q * h.count;
  let lower = 0;
  let below = 0;
  for (const [le, c] of h.buckets) {
    if (c >= rank) {
      if (le === Infinity) return lower; // beyond the last finite bound: report that bound
      return lower + ((le - lower) * (rank - below)) / Math.max(1e-12, c - below);
    }
    lower = le;
    below = c;
  }
  return lower;
}
