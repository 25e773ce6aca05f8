import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api } from "../api";

const REFRESH_MS = 30_000;

interface Bucket {
  at: number;
  succeeded: number;
  failed: number;
  p50Ms: number | null;
  p95Ms: number | null;
}

/** Throughput and durations per minute over the last hour (GET /api/stats), refreshed every 30 s. */
export function Activity() {
  const [buckets, setBuckets] = useState<Bucket[] | null>(null);
  const [truncated, setTruncated] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const load = () =>
      api("GET", "/api/stats").then(
        (s) => {
          setBuckets(s.buckets);
          setTruncated(s.truncated);
          setError(null);
        },
        (err) => setError((err as Error).message),
      );
    void load();
    const t = setInterval(load, REFRESH_MS);
    return () => clearInterval(t);
  }, []);
  if (error) return <p class="error">{error}</p>;
  if (!buckets) return <p class="loading">Loading…</p>;
  const x = buckets.map((b) => b.at / 1000);
  const done = buckets.reduce((n, b) => n + b.succeeded + b.failed, 0);
  return (
    <section>
      <h1>Activity, last hour</h1>
      <p class="hint">
        {done} jobs finished{truncated ? " (the oldest jobs of the hour were not read)" : ""}. Durations run from submission to the final state.
      </p>
      <Chart
        testId="throughput"
        title="Jobs finished per minute"
        data={[x, buckets.map((b) => b.succeeded), buckets.map((b) => b.failed)]}
        series={[
          { label: "succeeded", stroke: "#2e7d32", fill: "rgba(46,125,50,0.15)" },
          { label: "failed / timed out / cancelled", stroke: "#c62828", fill: "rgba(198,40,40,0.12)" },
        ]}
      />
      <Chart
        testId="durations"
        title="Duration (seconds)"
        data={[x, buckets.map((b) => (b.p50Ms === null ? null : b.p50Ms / 1000)), buckets.map((b) => (b.p95Ms === null ? null : b.p95Ms / 1000))]}
        series={[
          { label: "p50", stroke: "#1565c0", points: { show: true } },
          { label: "p95", stroke: "#ef6c00", points: { show: true } },
        ]}
      />
    </section>
  );
}

function Chart({ testId, title, data, series }: { testId: string; title: string; data: uPlot.AlignedData; series: uPlot.Series[] }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const width = Math.max(320, Math.min(900, (el.current?.parentElement?.clientWidth ?? 800) - 16));
    plot.current = new uPlot({ title, width, height: 220, series: [{}, ...series], axes: [{}, { size: 50 }] }, data, el.current!);
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => plot.current?.setData(data), [data]);
  return <div class="card chart" data-testid={testId} ref={el} />;
}
