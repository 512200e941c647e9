import { LATENCY_BUCKETS_MS } from '@shoal/protocol';
import type { MetricsRegistry } from '@shoal/core';
import type { LoadTotals } from './load-tracker.js';

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/**
 * A Prometheus histogram (seconds, on LATENCY_BUCKETS_MS) whose values are read from the trackers' totals when
 * scraped, so a request costs a few integer increments instead of a prom-client `observe()`. It implements the
 * interface prom-client's `Registry` reads from a metric (`name`, `help`, `type`, `aggregator`, `get()`,
 * `reset()`), and renders exactly what a prom-client `Histogram` renders.
 */
export class TotalsHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => LoadTotals[],
    registry: MetricsRegistry,
  ) {
    registry.registerMetric(this as never);
  }

  async get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    const counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
    let sumMs = 0;
    for (const totals of this.read()) {
      totals.buckets.forEach((c, i) => (counts[i]! += c));
      sumMs += totals.sumMs;
    }
    const values: MetricValue[] = [];
    let cumulative = 0;
    LATENCY_BUCKETS_MS.forEach((ms, i) => {
      cumulative += counts[i]!;
      values.push({ labels: { le: ms / 1000 }, value: cumulative, metricName: `${this.name}_bucket` });
    });
    const count = cumulative + counts[LATENCY_BUCKETS_MS.length]!;
    values.push({ labels: { le: '+Inf' }, value: count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: sumMs / 1000, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Totals belong to the trackers; there is nothing to reset here. */
  reset(): void {}
}
