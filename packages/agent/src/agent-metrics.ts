import { Counter, Gauge } from 'prom-client';
import { memoizeMetrics, type MetricsRegistry } from '@shoal/core';
import type { LoadTotals } from './load-tracker.js';
import { TotalsHistogram } from './totals-histogram.js';

/**
 * The agent's Prometheus metrics. Values that describe the process at a point in time (in-flight, app gauges) are
 * read at scrape time through `sources`; per-interval signals (event-loop, CPU) are set at each report tick.
 */
export interface AgentMetricSources {
  inFlight(): number;
  totals(): LoadTotals;
  appGauges(): Map<string, number>;
  appCounters(): Map<string, number>;
}

export const createAgentMetrics = memoizeMetrics((registry: MetricsRegistry) => {
  const sources = new Set<AgentMetricSources>();
  const registers = [registry];
  return {
    sources,
    inFlight: new Gauge({
      name: 'shoal_agent_in_flight_requests',
      help: 'Requests (HTTP and gRPC) being served now.',
      registers,
      collect() {
        let n = 0;
        for (const s of sources) n += s.inFlight();
        this.set(n);
      },
    }),
    requests: new Counter({
      name: 'shoal_agent_requests_total',
      help: 'Requests completed.',
      registers,
      collect() {
        let n = 0;
        for (const s of sources) n += s.totals().requests;
        this.reset();
        this.inc(n);
      },
    }),
    errors: new Counter({
      name: 'shoal_agent_request_errors_total',
      help: 'Requests that failed (HTTP 5xx, a response that did not complete, gRPC server-side error codes).',
      registers,
      collect() {
        let n = 0;
        for (const s of sources) n += s.totals().errors;
        this.reset();
        this.inc(n);
      },
    }),
    duration: new TotalsHistogram(
      'shoal_agent_request_duration_seconds',
      'Request latency, on the protocol buckets (LATENCY_BUCKETS_MS).',
      () => [...sources].map((s) => s.totals()),
      registry,
    ),
    refused: new Counter({
      name: 'shoal_agent_refused_requests_total',
      help: 'Requests answered 503 because the instance is draining.',
      registers,
    }),
    eventLoopUtilization: new Gauge({
      name: 'shoal_agent_event_loop_utilization_ratio',
      help: 'Event-loop utilization over the last report interval (0..1).',
      registers,
    }),
    eventLoopDelayP99: new Gauge({
      name: 'shoal_agent_event_loop_delay_p99_seconds',
      help: 'p99 event-loop delay over the last report interval.',
      registers,
    }),
    cpu: new Gauge({
      name: 'shoal_agent_cpu_cores',
      help: 'CPU used over the last report interval, in cores.',
      registers,
    }),
    rss: new Gauge({ name: 'shoal_agent_resident_memory_bytes', help: 'Resident set size.', registers }),
    heapUsed: new Gauge({ name: 'shoal_agent_heap_used_bytes', help: 'V8 heap used.', registers }),
    ready: new Gauge({ name: 'shoal_agent_ready', help: '1 when the instance takes traffic, else 0.', registers }),
    appGauge: new Gauge({
      name: 'shoal_agent_app_metric',
      help: 'Application gauges defined with agent.gauge(name, fn).',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const s of sources) for (const [name, value] of s.appGauges()) this.set({ name }, value);
      },
    }),
    appCounter: new Gauge({
      name: 'shoal_agent_app_counter_total',
      help: 'Application counters defined with agent.counter(name), totals since start.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const s of sources) for (const [name, value] of s.appCounters()) this.set({ name }, value);
      },
    }),
    reports: new Counter({
      name: 'shoal_agent_reports_total',
      help: 'Load reports by outcome: sent (written to the coordinator stream) or dropped (buffer full).',
      labelNames: ['result'],
      registers,
    }),
    connected: new Gauge({
      name: 'shoal_agent_coordinator_connected',
      help: '1 while the report stream to the coordinator is established.',
      registers,
    }),
    connectFailures: new Counter({
      name: 'shoal_agent_coordinator_connect_failures_total',
      help: 'Failed attempts to establish the report stream (including those refused by the open breaker).',
      registers,
    }),
    breakerState: new Gauge({
      name: 'shoal_agent_coordinator_breaker_state',
      help: 'Circuit breaker around the coordinator stream: 0 closed, 1 half-open, 2 open.',
      registers,
    }),
    directives: new Counter({
      name: 'shoal_agent_directives_total',
      help: 'Directives received, by result: applied or invalid (logged and ignored).',
      labelNames: ['result'],
      registers,
    }),
  };
});

export type AgentMetrics = ReturnType<typeof createAgentMetrics>;
