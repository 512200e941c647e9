import { Counter, Gauge } from 'prom-client';
import { memoizeMetrics, type MetricsRegistry } from '@shoal/core';

/** What a live balancer reports at scrape time. Picks are counted in plain numbers and folded in on scrape. */
export interface BalancerMetricsSource {
  readonly name: string;
  readonly strategyName: string;
  picks: number;
  picksReported: number;
  endpointCount(): number;
  ejectedCount(): number;
  panicking(): boolean;
}

export interface BalancerMetrics {
  readonly sources: Set<BalancerMetricsSource>;
  readonly picks: Counter<'balancer' | 'strategy'>;
  readonly ejections: Counter<'balancer' | 'reason'>;
  readonly retryBudgetRefusals: Counter<'balancer'>;
  readonly handlesExpired: Counter<'balancer'>;
  /** Folds a source's uncounted picks into the counter (on scrape and when it closes). */
  flush(source: BalancerMetricsSource): void;
}

/** One set of @shoal/balancer metrics per registry (balancers sharing a registry share them). */
export const balancerMetrics = memoizeMetrics((registry: MetricsRegistry): BalancerMetrics => {
  const registers = [registry];
  const sources = new Set<BalancerMetricsSource>();
  const picks = new Counter({
    name: 'shoal_balancer_picks_total',
    help: 'Endpoints picked by the balancer.',
    labelNames: ['balancer', 'strategy'] as const,
    registers,
    collect() {
      for (const s of sources) flush(s);
    },
  });
  const flush = (s: BalancerMetricsSource) => {
    const delta = s.picks - s.picksReported;
    if (delta > 0) picks.inc({ balancer: s.name, strategy: s.strategyName }, delta);
    s.picksReported = s.picks;
  };
  new Gauge({
    name: 'shoal_balancer_endpoints',
    help: 'Endpoints the balancer knows, by state.',
    labelNames: ['balancer', 'state'] as const,
    registers,
    collect() {
      this.reset();
      for (const s of sources) {
        const ejected = s.ejectedCount();
        this.inc({ balancer: s.name, state: 'ejected' }, ejected);
        this.inc({ balancer: s.name, state: 'ready' }, s.endpointCount() - ejected);
      }
    },
  });
  new Gauge({
    name: 'shoal_balancer_panic',
    help: 'Balancers (1 per name) in healthy panic: fewer than healthyPanicThresholdPercent of the available endpoints are healthy, so picks spread over all.',
    labelNames: ['balancer'] as const,
    registers,
    collect() {
      this.reset();
      for (const s of sources) this.inc({ balancer: s.name }, s.panicking() ? 1 : 0);
    },
  });
  return {
    sources,
    picks,
    flush,
    ejections: new Counter({
      name: 'shoal_balancer_ejections_total',
      help: 'Endpoints ejected by outlier detection, by reason (consecutive_failures, success_rate or failure_rate).',
      labelNames: ['balancer', 'reason'] as const,
      registers,
    }),
    retryBudgetRefusals: new Counter({
      name: 'shoal_balancer_retry_budget_refusals_total',
      help: 'Retries refused because the retry budget was spent.',
      labelNames: ['balancer'] as const,
      registers,
    }),
    handlesExpired: new Counter({
      name: 'shoal_balancer_handles_expired_total',
      help: 'Pick handles never completed within handleTimeoutMs, swept so they stop counting as in flight.',
      labelNames: ['balancer'] as const,
      registers,
    }),
  };
});
