/**
 * `simulate()`: replays a request-rate trace through the queueing model of a service whose replica count
 * is driven by `decide()` — the same engine the coordinator runs. One-second steps; seeded, so the same
 * inputs always give the same result.
 */
import {
  assertInteger,
  assertNonNegativeNumber,
  assertOneOf,
  assertPositiveNumber,
  InvalidArgumentError,
} from '@shoal/core';
import { decide } from '../decide.js';
import type { Decision } from '../decide.js';
import type { Observation, ObservedInstance } from '../observation.js';
import { resolvePolicy } from '../policy.js';
import type { Policy, PolicyInput } from '../policy.js';
import type { PolicyState } from '../state.js';
import { stepQueue } from './queue-model.js';
import type { QueueParams, QueueState, ServiceTimeDistribution } from './queue-model.js';
import { SeededRandom } from './random.js';
import { rateAt, traceDurationS } from './trace.js';
import type { Trace } from './trace.js';

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

export interface TimelinePoint {
  /** Seconds from the start (bucket start). */
  t: number;
  /** Mean arrival rate, req/s. */
  load: number;
  /** Mean capacity of ready replicas, req/s. */
  capacity: number;
  /** Replicas (including starting ones) at the end of the bucket. */
  replicas: number;
  /** Mean ready replicas. */
  ready: number;
  /** Worst p95 latency in the bucket, ms. */
  latencyP95Ms: number;
  dropped: number;
  sloViolationSeconds: number;
}

export interface ScaleEventRecord {
  t: number;
  from: number;
  to: number;
  panicking: boolean;
}

export interface SimulationSummary {
  durationS: number;
  totalRequests: number;
  droppedRequests: number;
  /** Sum over seconds of replicas running (starting ones included: they cost money too). */
  replicaSeconds: number;
  /** Seconds with p95 above the SLO or any dropped request. */
  sloViolationSeconds: number;
  scaleEvents: number;
  scaleUps: number;
  scaleDowns: number;
  /** Direction changes between consecutive scale events. */
  reversals: number;
  /** Reversals less than 300 s after the previous, opposite event (flapping). */
  flaps: number;
  peakReplicas: number;
  meanReplicas: number;
  /** Episodes where ready capacity fell below the arrival rate. */
  surges: number;
  /** Seconds until ready capacity caught up again, per surge: mean, p95 and max (0 when none). */
  timeToAdequateS: { mean: number; p95: number; max: number };
  /** Mean utilization of ready replicas. */
  meanUtilization: number;
}

export interface SimulationResult {
  trace: string;
  model: SimulationModel;
  summary: SimulationSummary;
  timeline: TimelinePoint[];
  events: ScaleEventRecord[];
}

export interface SimulateOptions {
  trace: Trace;
  policy: Policy | PolicyInput;
  model?: SimulationModelInput;
  /** Called after every decision (second `t` of the trace), e.g. to log reasons. */
  onDecision?: (t: number, decision: Decision, observation: Observation) => void;
}

const DEFAULT_START = Date.UTC(2026, 0, 5);

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

interface SimInstance {
  id: string;
  createdAt: number; // s
  readyAt: number; // s
  noise: number; // fixed per-instance bias, so least-loaded victims differ
}

interface Sample {
  utilization: number;
  inFlight: number;
  rps: number;
  p95: number;
  p99: number;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** Replays `trace` under `policy` through the model. Deterministic for a given seed. */
export function simulate(options: SimulateOptions): SimulationResult {
  const { trace } = options;
  if (typeof trace !== 'object' || trace === null || !Array.isArray(trace.rates) || !(trace.stepS > 0)) {
    throw new InvalidArgumentError('trace must be { name, stepS, rates } (see parseTraceCsv)');
  }
  const policy = resolvePolicy(options.policy);
  const model = resolveModel(options.model);
  const rng = new SeededRandom(model.seed);
  const queueParams: QueueParams = {
    concurrency: model.concurrency,
    serviceTimeMs: model.serviceTimeMs,
    distribution: model.serviceTimeDistribution,
    cv: model.serviceTimeCv,
    timeoutMs: model.timeoutMs,
  };
  const duration = Math.floor(traceDurationS(trace));
  const startAtMs = model.startAtMs ?? trace.startMs ?? DEFAULT_START;
  const cap = model.replicaCapacityRps;
  const coldS = model.coldStartMs / 1000;

  const initial =
    model.initialReplicas ??
    Math.min(policy.maxReplicas, Math.max(policy.minReplicas, 1, Math.ceil(rateAt(trace, 0) / (cap * 0.6))));
  let seq = 0;
  const newInstance = (t: number, ready: boolean): SimInstance => ({
    id: `r${++seq}`,
    createdAt: ready ? t - 3600 : t,
    readyAt: ready ? t - 3600 : t + coldS,
    noise: rng.normal(),
  });
  let instances: SimInstance[] = [];
  for (let k = 0; k < initial; k++) instances.push(newInstance(0, true));

  const q: QueueState = { backlog: 0 };
  const historyS = Math.ceil((model.metricLagMs + model.reportIntervalMs) / 1000) + 2;
  const ring: Sample[] = new Array(historyS);
  let state: PolicyState | undefined;
  const syncS = model.syncPeriodMs / 1000;
  let nextSync = 0;

  const bucket = Math.max(1, Math.ceil(duration / model.timelinePoints));
  const timeline: TimelinePoint[] = [];
  let cur: TimelinePoint | undefined;
  const events: ScaleEventRecord[] = [];

  let totalRequests = 0;
  let dropped = 0;
  let replicaSeconds = 0;
  let violation = 0;
  let peak = 0;
  let utilSum = 0;
  let utilN = 0;
  let inadequateSince = -1;
  const catchUps: number[] = [];

  for (let t = 0; t < duration; t++) {
    // 1. Decide on the sync period, from what the agents reported.
    if (t >= nextSync) {
      nextSync += syncS;
      const observation = observe(t);
      const d = decide(policy, observation, state);
      state = d.state;
      options.onDecision?.(t, d, observation);
      const from = instances.length;
      if (d.desiredReplicas > from) {
        for (let k = from; k < d.desiredReplicas; k++) instances.push(newInstance(t, false));
      } else if (d.desiredReplicas < from) {
        const remove = new Set(d.victims ?? []);
        instances = instances.filter((i) => !remove.has(i.id));
        // Victims name instances the engine saw; if it named fewer, drop the newest.
        while (instances.length > d.desiredReplicas) instances.pop();
      }
      if (d.desiredReplicas !== from) events.push({ t, from, to: d.desiredReplicas, panicking: d.panicking });
    }

    // 2. Serve this second.
    let ready = 0;
    for (const i of instances) if (i.readyAt <= t) ready++;
    const rate = rateAt(trace, t);
    const arrivals = rng.poisson(rate);
    const r = stepQueue(q, queueParams, ready, arrivals, 1);
    ring[t % historyS] = {
      utilization: r.utilization,
      inFlight: r.inFlightPerReplica,
      rps: ready > 0 ? arrivals / ready : 0,
      p95: r.latencyP95Ms,
      p99: r.latencyP99Ms,
    };
    totalRequests += arrivals;
    dropped += r.dropped;
    replicaSeconds += instances.length;
    peak = Math.max(peak, instances.length);
    const violated = r.latencyP95Ms > model.sloP95Ms || r.dropped >= 0.5;
    if (violated) violation++;
    if (ready > 0) {
      utilSum += r.utilization;
      utilN++;
    }
    const adequate = ready * cap >= rate;
    if (!adequate && inadequateSince < 0) inadequateSince = t;
    if (adequate && inadequateSince >= 0) {
      catchUps.push(t - inadequateSince);
      inadequateSince = -1;
    }

    // 3. Timeline.
    if (t % bucket === 0) {
      if (cur) timeline.push(finishPoint(cur, bucket));
      cur = { t, load: 0, capacity: 0, replicas: 0, ready: 0, latencyP95Ms: 0, dropped: 0, sloViolationSeconds: 0 };
    }
    if (cur) {
      cur.load += rate;
      cur.capacity += ready * cap;
      cur.ready += ready;
      cur.replicas = instances.length;
      cur.latencyP95Ms = Math.max(cur.latencyP95Ms, r.latencyP95Ms);
      cur.dropped += r.dropped;
      if (violated) cur.sloViolationSeconds++;
    }
  }
  if (cur) timeline.push(finishPoint(cur, duration - cur.t));
  if (inadequateSince >= 0) catchUps.push(duration - inadequateSince);

  let reversals = 0;
  let flaps = 0;
  for (let k = 1; k < events.length; k++) {
    const a = events[k - 1] as ScaleEventRecord;
    const b = events[k] as ScaleEventRecord;
    if (Math.sign(a.to - a.from) !== Math.sign(b.to - b.from)) {
      reversals++;
      if (b.t - a.t < 300) flaps++;
    }
  }
  const sorted = catchUps.slice().sort((x, y) => x - y);
  const summary: SimulationSummary = {
    durationS: duration,
    totalRequests,
    droppedRequests: Math.round(dropped),
    replicaSeconds,
    sloViolationSeconds: violation,
    scaleEvents: events.length,
    scaleUps: events.filter((e) => e.to > e.from).length,
    scaleDowns: events.filter((e) => e.to < e.from).length,
    reversals,
    flaps,
    peakReplicas: peak,
    meanReplicas: duration > 0 ? replicaSeconds / duration : 0,
    surges: catchUps.length,
    timeToAdequateS: {
      mean: sorted.length ? sorted.reduce((s, x) => s + x, 0) / sorted.length : 0,
      p95: quantile(sorted, 0.95),
      max: sorted.length ? (sorted.at(-1) as number) : 0,
    },
    meanUtilization: utilN ? utilSum / utilN : 0,
  };
  return { trace: trace.name, model, summary, timeline, events };

  /** What the coordinator would know at second `t`: each instance's latest report, aged by the metric lag. */
  function observe(t: number): Observation {
    const end = t - Math.ceil(model.metricLagMs / 1000);
    const span = Math.max(1, Math.round(model.reportIntervalMs / 1000));
    let n = 0;
    const avg: Sample = { utilization: 0, inFlight: 0, rps: 0, p95: 0, p99: 0 };
    for (let s = end - span; s < end; s++) {
      if (s < 0) continue;
      const x = ring[s % historyS];
      if (!x) continue;
      avg.utilization += x.utilization;
      avg.inFlight += x.inFlight;
      avg.rps += x.rps;
      avg.p95 += x.p95;
      avg.p99 += x.p99;
      n++;
    }
    if (n > 0) {
      avg.utilization /= n;
      avg.inFlight /= n;
      avg.rps /= n;
      avg.p95 /= n;
      avg.p99 /= n;
    }
    const nowMs = startAtMs + t * 1000;
    const reportAt = startAtMs + end * 1000;
    const out: ObservedInstance[] = new Array(instances.length);
    for (let k = 0; k < instances.length; k++) {
      const i = instances[k] as SimInstance;
      const hasReport = n > 0 && i.readyAt <= end - span;
      const isReady = i.readyAt <= t;
      const f = 1 + model.metricNoise * i.noise;
      out[k] = {
        id: i.id,
        ready: isReady,
        startedAt: startAtMs + i.createdAt * 1000,
        readySince: startAtMs + (isReady ? i.readyAt : i.createdAt) * 1000,
        sampledAt: reportAt,
        requests: { cpu: model.cpuPerReplica },
        metrics: hasReport
          ? {
              eventLoopUtilization: Math.min(1, avg.utilization * f),
              cpu: Math.min(1, avg.utilization * f) * model.cpuPerReplica,
              inFlight: avg.inFlight * f,
              rps: avg.rps * f,
              latencyP95Ms: avg.p95,
              latencyP99Ms: avg.p99,
            }
          : {},
      };
    }
    return { now: nowMs, currentReplicas: instances.length, instances: out };
  }
}

function finishPoint(p: TimelinePoint, n: number): TimelinePoint {
  const d = Math.max(1, n);
  return { ...p, load: p.load / d, capacity: p.capacity / d, ready: p.ready / d };
}
