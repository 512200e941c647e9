/** The simulator's model of a service: capacity, start-up, reporting and the SLO, validated once. */
import {
  assertInteger,
  assertNonNegativeNumber,
  assertOneOf,
  assertPositiveNumber,
  InvalidArgumentError,
} from '@shoal/core';
import type { ServiceTimeDistribution } from './queue-model.js';

export interface SimulationModelInput {
  /** Requests one replica serves at once. Default 4. */
  concurrency?: number;
  /** Mean service time of one request. Default 50 (so one replica serves 80 req/s). */
  serviceTimeMs?: number;
  /** Service-time distribution. Default `'exponential'`. */
  serviceTimeDistribution?: ServiceTimeDistribution;
  /** Coefficient of variation for `'lognormal'`. Default 1. */
  serviceTimeCv?: number;
  /** Requests that would wait longer are dropped. Default 2000. */
  timeoutMs?: number;
  /** Mean time from the decision to the new replica serving. Default 30000. */
  coldStartMs?: number;
  /**
   * Spread of the cold start: each new replica draws its own start-up time from a lognormal distribution with mean
   * `coldStartMs` and this coefficient of variation (0: every replica takes exactly `coldStartMs`). Default 0.3
   * (at a 30 s mean: median 28.7 s, 5 % under 18 s, 5 % over 46 s).
   */
  coldStartCv?: number;
  /**
   * At most this many replicas start at once; a further one waits for a start slot, then takes its own cold start
   * (an image pull, a node's start-up budget). Default 0: no limit.
   */
  maxParallelStarts?: number;
  /**
   * A replica removed by a scale-down stops taking requests at once but keeps running (and counts in
   * replica-seconds) for this long while it drains: deregistration, the agent's `terminationDelayMs`, in-flight
   * requests. Default 5000 (the agent's `terminationDelayMs`).
   */
  drainMs?: number;
  /** How often the controller decides. Default 5000 (the coordinator's `syncPeriodMs`; the HPA's is 15000). */
  syncPeriodMs?: number;
  /** Each agent report covers this long. Default 1000 (the agent's report interval). */
  reportIntervalMs?: number;
  /** Reports averaged into one observation. Default: the sync period (as the coordinator does). */
  metricWindowMs?: number;
  /** Transport delay of a report to the window. Default 0 (the coordinator gets a report as it is sent). */
  metricLagMs?: number;
  /**
   * Reports are published in batches at this resolution, half a resolution out of phase with the sync period
   * (metrics-server: a 15 s scrape, so metrics 0–15 s old). Default 0: each report as it arrives.
   */
  metricResolutionMs?: number;
  /** p95 latency bound; above it (or with drops) a second counts as an SLO violation. Default 250. */
  sloP95Ms?: number;
  /** CPU cores a fully busy replica uses, reported as its `cpu` request. Default 1. */
  cpuPerReplica?: number;
  /** Replicas at the start. Default: enough for the first second at 60 % utilization, within [min, max]. */
  initialReplicas?: number;
  /** Relative noise on each instance's reported metrics. Default 0.02. */
  metricNoise?: number;
  /** PRNG seed. Default 1. */
  seed?: number;
  /** Wall-clock time of the first second (schedules evaluate against it). Default the trace's, else 2026-01-05T00:00Z. */
  startAtMs?: number;
  /** Points in the returned timeline (buckets are averaged). Default 1500. */
  timelinePoints?: number;
}

export interface SimulationModel extends Required<
  Omit<SimulationModelInput, 'initialReplicas' | 'startAtMs' | 'metricWindowMs'>
> {
  /** Reports averaged into one observation (resolved: the sync period when not set). */
  metricWindowMs: number;
  initialReplicas?: number;
  startAtMs?: number;
  /** Requests per second one ready replica can serve. */
  readonly replicaCapacityRps: number;
}

export const DEFAULT_START = Date.UTC(2026, 0, 5);

/**
 * The model as the HPA sees the service (Kubernetes defaults): a 15 s sync period, and metrics-server's CPU — a
 * rate over a 15 s window, published every 15 s, so 0–15 s old at a decision. `overrides` change any of them
 * (`metricWindowMs`, `metricResolutionMs`, `syncPeriodMs`).
 */
export function metricsServerModel(
  model: SimulationModelInput = {},
  overrides: {
    syncPeriodMs?: number | undefined;
    metricWindowMs?: number | undefined;
    metricResolutionMs?: number | undefined;
  } = {},
): SimulationModelInput {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return { ...model, syncPeriodMs: 15_000, metricWindowMs: 15_000, metricResolutionMs: 15_000, ...defined };
}

export function resolveModel(input: SimulationModelInput = {}): SimulationModel {
  const m = {
    concurrency: 4,
    serviceTimeMs: 50,
    serviceTimeDistribution: 'exponential' as ServiceTimeDistribution,
    serviceTimeCv: 1,
    timeoutMs: 2000,
    coldStartMs: 30_000,
    coldStartCv: 0.3,
    maxParallelStarts: 0,
    drainMs: 5000,
    syncPeriodMs: 5000,
    reportIntervalMs: 1000,
    metricLagMs: 0,
    metricResolutionMs: 0,
    sloP95Ms: 250,
    cpuPerReplica: 1,
    metricNoise: 0.02,
    seed: 1,
    timelinePoints: 1500,
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
  } as SimulationModelInput & Required<Omit<SimulationModelInput, 'initialReplicas' | 'startAtMs'>>;
  m.metricWindowMs ??= m.syncPeriodMs;
  const known = [
    'concurrency',
    'serviceTimeMs',
    'serviceTimeDistribution',
    'serviceTimeCv',
    'timeoutMs',
    'coldStartMs',
    'coldStartCv',
    'maxParallelStarts',
    'drainMs',
    'syncPeriodMs',
    'reportIntervalMs',
    'metricLagMs',
    'metricWindowMs',
    'metricResolutionMs',
    'sloP95Ms',
    'cpuPerReplica',
    'initialReplicas',
    'metricNoise',
    'seed',
    'startAtMs',
    'timelinePoints',
  ];
  for (const k of Object.keys(input)) {
    if (!known.includes(k)) throw new InvalidArgumentError(`model has an unknown option ${JSON.stringify(k)}`);
  }
  assertInteger('model.concurrency', m.concurrency, 1, 100_000);
  assertPositiveNumber('model.serviceTimeMs', m.serviceTimeMs);
  assertOneOf('model.serviceTimeDistribution', m.serviceTimeDistribution, [
    'exponential',
    'lognormal',
    'constant',
  ] as const);
  assertPositiveNumber('model.serviceTimeCv', m.serviceTimeCv);
  assertPositiveNumber('model.timeoutMs', m.timeoutMs);
  assertNonNegativeNumber('model.coldStartMs', m.coldStartMs);
  assertNonNegativeNumber('model.coldStartCv', m.coldStartCv);
  if (m.coldStartCv > 10) throw new InvalidArgumentError(`model.coldStartCv must be at most 10, got ${m.coldStartCv}`);
  assertInteger('model.maxParallelStarts', m.maxParallelStarts, 0, 100_000);
  assertInteger('model.drainMs', m.drainMs, 0, 3_600_000);
  assertInteger('model.syncPeriodMs', m.syncPeriodMs, 1000, 3_600_000);
  assertInteger('model.reportIntervalMs', m.reportIntervalMs, 1000, 600_000);
  assertInteger('model.metricLagMs', m.metricLagMs, 0, 600_000);
  assertInteger('model.metricWindowMs', m.metricWindowMs, 1000, 3_600_000);
  assertInteger('model.metricResolutionMs', m.metricResolutionMs, 0, 600_000);
  assertPositiveNumber('model.sloP95Ms', m.sloP95Ms);
  assertPositiveNumber('model.cpuPerReplica', m.cpuPerReplica);
  assertNonNegativeNumber('model.metricNoise', m.metricNoise);
  assertInteger('model.seed', m.seed, 0, 2 ** 32 - 1);
  assertInteger('model.timelinePoints', m.timelinePoints, 10, 1_000_000);
  if (m.initialReplicas !== undefined) assertInteger('model.initialReplicas', m.initialReplicas, 0, 100_000);
  if (m.startAtMs !== undefined) assertInteger('model.startAtMs', m.startAtMs);
  return Object.freeze({ ...m, replicaCapacityRps: (m.concurrency * 1000) / m.serviceTimeMs }) as SimulationModel;
}
