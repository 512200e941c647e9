import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { memoizeMetrics, type MetricsRegistry } from '@shoal/core';

/** The coordinator's Prometheus metrics (labels only take values from the config, never from agents). */
export const createCoordinatorMetrics = memoizeMetrics((registry: MetricsRegistry) => ({
  decisions: new Counter({
    name: 'shoal_coordinator_decisions_total',
    help: 'Scaling decisions, by service and direction (up, down, none) and whether they were applied.',
    labelNames: ['service', 'direction', 'applied'] as const,
    registers: [registry],
  }),
  desiredReplicas: new Gauge({
    name: 'shoal_coordinator_desired_replicas',
    help: 'Replicas the last decision asked for.',
    labelNames: ['service'] as const,
    registers: [registry],
  }),
  currentReplicas: new Gauge({
    name: 'shoal_coordinator_current_replicas',
    help: 'Replicas the actuator reported at the last decision.',
    labelNames: ['service'] as const,
    registers: [registry],
  }),
  instances: new Gauge({
    name: 'shoal_coordinator_instances',
    help: 'Instances with a window, by service and state (ready, unready, missing, draining).',
    labelNames: ['service', 'state'] as const,
    registers: [registry],
  }),
  reportsReceived: new Counter({
    name: 'shoal_coordinator_reports_received_total',
    help: 'Reports accepted into a window, by service and transport (stream, unary, http, relay).',
    labelNames: ['service', 'transport'] as const,
    registers: [registry],
  }),
  reportsRefused: new Counter({
    name: 'shoal_coordinator_reports_refused_total',
    help: 'Messages refused, by reason (invalid, unauthenticated, permission_denied, rate_limited, too_large, capacity, no_hello).',
    labelNames: ['reason', 'transport'] as const,
    registers: [registry],
  }),
  loopDuration: new Histogram({
    name: 'shoal_coordinator_loop_duration_seconds',
    help: 'Time one control-loop iteration took for a service (observe, decide, actuate, persist).',
    labelNames: ['service'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
  actuatorErrors: new Counter({
    name: 'shoal_coordinator_actuator_errors_total',
    help: 'Actuator calls that failed, by service.',
    labelNames: ['service'] as const,
    registers: [registry],
  }),
  connectionsRefused: new Counter({
    name: 'shoal_coordinator_connections_refused_total',
    help: 'Connections closed as soon as accepted, by listener (http, grpc, keda) and reason (max_connections, max_connections_per_client).',
    labelNames: ['listener', 'reason'] as const,
    registers: [registry],
  }),
  streams: new Gauge({
    name: 'shoal_coordinator_streams',
    help: 'Agent streams currently open on this coordinator.',
    registers: [registry],
  }),
  kedaSnapshots: new Counter({
    name: 'shoal_coordinator_keda_snapshots_total',
    help: 'Times the KEDA scaler computed a service answer from its instances (once per decision, shared by every watcher).',
    registers: [registry],
  }),
  kedaWatchers: new Gauge({
    name: 'shoal_coordinator_keda_watchers',
    help: 'KEDA StreamIsActive streams open.',
    registers: [registry],
  }),
  leader: new Gauge({
    name: 'shoal_coordinator_leader',
    help: '1 while this coordinator is the leader (or runs alone), else 0.',
    registers: [registry],
  }),
  wakeWaitingCalls: new Gauge({
    name: 'shoal_coordinator_wake_waiting_calls',
    help: 'Calls clients report waiting for the service to wake (within the demand TTL).',
    labelNames: ['service'],
    registers: [registry],
  }),
  wakeReports: new Counter({
    name: 'shoal_coordinator_wake_reports_total',
    help: 'Waiting-call reports from clients (POST /v1/services/:name/wake), by outcome (accepted, refused; on a follower forwarded, unforwarded).',
    labelNames: ['service', 'outcome'],
    registers: [registry],
  }),
  wakes: new Counter({
    name: 'shoal_coordinator_wakes_total',
    help: 'Scale-ups from zero applied because calls were waiting at clients.',
    labelNames: ['service'],
    registers: [registry],
  }),
}));

export type CoordinatorMetrics = ReturnType<typeof createCoordinatorMetrics>;

/** The decision directions `shoal_coordinator_decisions_total` counts. */
export const DECISION_DIRECTIONS = ['up', 'down', 'none'] as const;

/**
 * Starts a service's counters at 0 for every label combination it can take. A counter series that first appears
 * at 1 is invisible to `increase()` and `rate()` (Prometheus has no earlier sample to subtract), so without this the
 * first scale-up and the first scale-down of each service never show on a dashboard.
 */
export function startServiceSeries(metrics: CoordinatorMetrics, service: string): void {
  for (const labels of decisionLabels(service)) metrics.decisions.inc(labels, 0);
  metrics.actuatorErrors.inc({ service }, 0);
  metrics.wakes.inc({ service }, 0);
}

function decisionLabels(service: string): Array<{ service: string; direction: string; applied: string }> {
  return DECISION_DIRECTIONS.flatMap((direction) =>
    ['true', 'false'].map((applied) => ({ service, direction, applied })),
  );
}

/** Forgets a removed service's series, so /metrics does not keep a service the config no longer has. */
export function removeServiceSeries(metrics: CoordinatorMetrics, service: string): void {
  for (const labels of decisionLabels(service)) metrics.decisions.remove(labels);
  metrics.actuatorErrors.remove({ service });
  metrics.wakes.remove({ service });
  metrics.wakeWaitingCalls.remove({ service });
  for (const outcome of ['accepted', 'refused', 'forwarded', 'unforwarded'])
    metrics.wakeReports.remove({ service, outcome });
}

/**
 * prom-client's default metrics include three gauges whose names end in `_total`, which Prometheus reserves for
 * counters (`promtool check metrics` rejects them). The coordinator's CLI drops them after collecting the defaults;
 * the same figures are in `nodejs_active_handles`, `nodejs_active_requests` and `nodejs_active_resources`.
 */
export const MISNAMED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

export function dropMisnamedDefaultMetrics(registry: MetricsRegistry): void {
  for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(name);
}

export function defaultRegistry(registry: MetricsRegistry | undefined): MetricsRegistry {
  return registry ?? new Registry();
}
