import { createRequire } from 'node:module';
import type * as promClient from 'prom-client';
import type { Counter as PromCounter, Gauge as PromGauge } from 'prom-client';
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

/** prom-client, loaded when an agent first needs a registry (see the README: "When prom-client is loaded"). */
export function loadPromClient(): typeof promClient {
  return createRequire(import.meta.url)('prom-client') as typeof promClient;
}

/** A fresh registry of the application's prom-client (loading prom-client). */
export function newRegistry(): MetricsRegistry {
  return new (loadPromClient().Registry)();
}

export const createAgentMetrics = memoizeMetrics((registry: MetricsRegistry) => {
  const { Counter, Gauge } = loadPromClient();
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

type Labels = Record<string, string>;

/** The part of a prom-client Counter the agent calls. */
export interface CounterLike {
  inc(labels?: Labels | number, value?: number): void;
}

/** The part of a prom-client Gauge the agent calls. */
export interface GaugeLike {
  set(value: number): void;
}

/**
 * The signals the agent and its reporter write (counters and gauges). Until the agent has a registry they are
 * recorders (plain numbers, no prom-client); `bindSignals` replays what they recorded into the registry's metrics
 * and switches to them, so a registry attached late (the first read of `agent.metricsHandler`) loses nothing.
 */
export interface AgentSignals {
  refused: CounterLike;
  reports: CounterLike;
  directives: CounterLike;
  connectFailures: CounterLike;
  connected: GaugeLike;
  breakerState: GaugeLike;
  eventLoopUtilization: GaugeLike;
  eventLoopDelayP99: GaugeLike;
  cpu: GaugeLike;
  rss: GaugeLike;
  heapUsed: GaugeLike;
  ready: GaugeLike;
}

const COUNTER_KEYS = ['refused', 'reports', 'directives', 'connectFailures'] as const;
const GAUGE_KEYS = [
  'connected',
  'breakerState',
  'eventLoopUtilization',
  'eventLoopDelayP99',
  'cpu',
  'rss',
  'heapUsed',
  'ready',
] as const;

class RecordingCounter implements CounterLike {
  /** Totals by label set (key: the single label value, or '' without labels). */
  readonly totals = new Map<string, { labels?: Labels; value: number }>();
  inc(labels?: Labels | number, value?: number): void {
    const l = typeof labels === 'object' ? labels : undefined;
    const n = typeof labels === 'number' ? labels : (value ?? 1);
    const key = l === undefined ? '' : JSON.stringify(l);
    const entry = this.totals.get(key);
    if (entry === undefined) this.totals.set(key, { ...(l !== undefined ? { labels: l } : {}), value: n });
    else entry.value += n;
  }
}

class RecordingGauge implements GaugeLike {
  value: number | undefined;
  set(value: number): void {
    this.value = value;
  }
}

/** Signals that record into plain numbers (no prom-client loaded). */
export function createRecordingSignals(): AgentSignals {
  const signals: Record<string, CounterLike | GaugeLike> = {};
  for (const k of COUNTER_KEYS) signals[k] = new RecordingCounter();
  for (const k of GAUGE_KEYS) signals[k] = new RecordingGauge();
  return signals as unknown as AgentSignals;
}

/** Replays recorded values into `metrics` and makes `signals` write to them from now on (in place). */
export function bindSignals(signals: AgentSignals, metrics: AgentMetrics): void {
  for (const k of COUNTER_KEYS) {
    const current = signals[k];
    const target = metrics[k] as unknown as PromCounter<string>;
    if (current instanceof RecordingCounter) {
      for (const { labels, value } of current.totals.values()) {
        if (labels !== undefined) target.inc(labels, value);
        else target.inc(value);
      }
    }
    signals[k] = target as unknown as CounterLike;
  }
  for (const k of GAUGE_KEYS) {
    const current = signals[k];
    const target = metrics[k] as unknown as PromGauge<string>;
    if (current instanceof RecordingGauge && current.value !== undefined) target.set(current.value);
    signals[k] = target as unknown as GaugeLike;
  }
}
