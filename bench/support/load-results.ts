/**
 * What the closed-loop load benchmarks (bench/grpc.ts, bench/http.ts) share: the per-run result, percentiles,
 * averaging rounds, and the printed table.
 */

export interface LoadResult {
  name: string;
  calls: number;
  errors: number;
  /** Share of the calls that went to the slow server (phase 2). */
  slowShare?: number;
  qps: number;
  p50Ms: number;
  p99Ms: number;
  /** Client process CPU (user + system) per call, microseconds (the servers run in a child process). */
  cpuUsPerCall: number;
}

/** The p-th percentile (nearest rank, rounded down) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Builds a result from the latencies of one measured run. */
export function loadResult(
  name: string,
  latencies: number[],
  elapsedMs: number,
  errors: number,
  toSlow?: number,
  cpu?: NodeJS.CpuUsage,
): LoadResult {
  const sorted = Float64Array.from(latencies).sort();
  return {
    name,
    calls: latencies.length,
    errors,
    ...(toSlow !== undefined ? { slowShare: latencies.length ? toSlow / latencies.length : 0 } : {}),
    qps: (latencies.length * 1000) / elapsedMs,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    cpuUsPerCall: cpu && latencies.length ? (cpu.user + cpu.system) / latencies.length : NaN,
  };
}

/** Rounds of one configuration: calls and errors summed, rates and latencies averaged. */
export function averageRuns(rows: LoadResult[]): LoadResult {
  const mean = (f: (r: LoadResult) => number) => rows.reduce((sum, r) => sum + f(r), 0) / rows.length;
  return {
    name: rows[0]!.name,
    calls: rows.reduce((sum, r) => sum + r.calls, 0),
    errors: rows.reduce((sum, r) => sum + r.errors, 0),
    slowShare: mean((r) => r.slowShare ?? 0),
    qps: mean((r) => r.qps),
    p50Ms: mean((r) => r.p50Ms),
    p99Ms: mean((r) => r.p99Ms),
    cpuUsPerCall: mean((r) => r.cpuUsPerCall),
  };
}

/** A plain-text table; `first` names the first column (client, dispatcher) and `unit` the count column. */
export function loadTable(rows: LoadResult[], first: string, unit: string): string {
  const withShare = rows.some((r) => r.slowShare !== undefined);
  const header = [first, unit, 'errors', 'QPS', 'p50 ms', 'p99 ms', 'CPU µs/call', ...(withShare ? ['to slow'] : [])];
  const lines = rows.map((r) => [
    r.name,
    String(r.calls),
    String(r.errors),
    r.qps.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    r.cpuUsPerCall.toFixed(1),
    ...(withShare ? [`${((r.slowShare ?? 0) * 100).toFixed(1)} %`] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(fmt)].join('\n');
}
