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
  /** From the decision to the new replica serving. Default 30000. */
  coldStartMs?: number;
  /** How often `decide()` runs. Default 15000 (HPA's sync period). */
  syncPeriodMs?: number;
  /** Each report averages this long. Default 1000 (the agent's report interval). */
  reportIntervalMs?: number;
  /** Age of the newest report at decision time. Default 1000. */
  metricLagMs?: number;
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

export interface SimulationModel extends Required<Omit<SimulationModelInput, 'initialReplicas' | 'startAtMs'>> {
  initialReplicas?: number;
  startAtMs?: number;
  /** Requests per second one ready replica can serve. */
  readonly replicaCapacityRps: number;
}

export const DEFAULT_START = Date.UTC(2026, 0, 5);

export function resolveModel(input: SimulationModelInput = {}): SimulationModel {
  const m = {
    concurrency: 4,
    serviceTimeMs: 50,
    serviceTimeDistribution: 'exponential' as ServiceTimeDistribution,
    serviceTimeCv: 1,
    timeoutMs: 2000,
    coldStartMs: 30_000,
    syncPeriodMs: 15_000,
    reportIntervalMs: 1000,
    metricLagMs: 1000,
    sloP95Ms: 250,
    cpuPerReplica: 1,
    metricNoise: 0.02,
    seed: 1,
    timelinePoints: 1500,
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
  } as SimulationModelInput & Required<Omit<SimulationModelInput, 'initialReplicas' | 'startAtMs'>>;
  const known = [
    'concurrency',
    'serviceTimeMs',
    'serviceTimeDistribution',
    'serviceTimeCv',
    'timeoutMs',
    'coldStartMs',
    'syncPeriodMs',
    'reportIntervalMs',
    'metricLagMs',
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
  assertInteger('model.syncPeriodMs', m.syncPeriodMs, 1000, 3_600_000);
  assertInteger('model.reportIntervalMs', m.reportIntervalMs, 1000, 600_000);
  assertInteger('model.metricLagMs', m.metricLagMs, 0, 600_000);
  assertPositiveNumber('model.sloP95Ms', m.sloP95Ms);
  assertPositiveNumber('model.cpuPerReplica', m.cpuPerReplica);
  assertNonNegativeNumber('model.metricNoise', m.metricNoise);
  assertInteger('model.seed', m.seed, 0, 2 ** 32 - 1);
  assertInteger('model.timelinePoints', m.timelinePoints, 10, 1_000_000);
  if (m.initialReplicas !== undefined) assertInteger('model.initialReplicas', m.initialReplicas, 0, 100_000);
  if (m.startAtMs !== undefined) assertInteger('model.startAtMs', m.startAtMs);
  return Object.freeze({ ...m, replicaCapacityRps: (m.concurrency * 1000) / m.serviceTimeMs }) as SimulationModel;
}
