/**
 * Kubernetes' HPA replica calculator for one metric, reproduced rule by rule from
 * kubernetes/kubernetes `pkg/controller/podautoscaler/replica_calculator.go` and `metrics/utilization.go`:
 * pod grouping (deleted/failed dropped, pending set aside, missing metrics, CPU-only readiness rules),
 * integer-percent utilization, milli-unit integer averages, the missing-metric fill (100 % of request or the
 * target on scale-down, 0 on scale-up), unready instances filled with 0 on scale-up only, tolerance per
 * direction, and the guards that return the current count when the fill flips the direction.
 */
import { checkObject } from './check.js';
import { assertFiniteNumber, assertInteger, assertNonNegativeNumber, assertObject, assertOneOf } from '@shoal/core';
import { InvalidArgumentError } from '@shoal/core';
import { PolicyMetricError } from './errors.js';

/** Instance phase, as a Kubernetes pod phase. */
export type HpaPhase = 'running' | 'pending' | 'failed';

/** One instance (pod) as the calculator sees it. Times are epoch milliseconds. */
export interface HpaInstance {
  id: string;
  /** Default `'running'`. */
  phase?: HpaPhase;
  /** Ready condition. Default `true`. */
  ready?: boolean;
  /** Being deleted (a deletion timestamp is set). Default `false`. */
  deleting?: boolean;
  /** Start time. Omitted: 0 (long ago, outside every start-up period). */
  startedAt?: number;
  /** Time of the last readiness transition. Omitted: `startedAt` (so an unready instance never became ready). */
  readySince?: number;
  /** Time the metric sample was taken. Omitted: fresh. */
  sampledAt?: number;
  /** Pods / resource-average-value metric value. Absent: the instance has no metric. */
  value?: number;
  /** Resource usage (e.g. CPU cores). Absent: the instance has no metric. */
  usage?: number;
  /** Resource request (same unit as `usage`). Required by resource-utilization targets. */
  request?: number;
}

export type HpaMetric =
  | { type: 'resource'; name: string; target: { averageUtilization: number } | { averageValue: number } }
  | { type: 'pods'; name?: string; target: { averageValue: number } }
  | {
      type: 'object' | 'external';
      name?: string;
      /** Object: the object's value. External: one value per series (summed) or their sum. */
      value: number | number[];
      target: { value: number } | { averageValue: number };
    };

/** Tolerance as one number for both directions, or per direction (KEP-4951). */
export type ToleranceInput = number | { up?: number; down?: number };

export interface HpaInput {
  currentReplicas: number;
  metric: HpaMetric;
  instances: HpaInstance[];
  now: number;
  /** Default 0.1 in both directions. */
  tolerance?: ToleranceInput;
  /** CPU initialization period. Default 300000 (5 min). */
  cpuInitializationPeriodMs?: number;
  /** Initial readiness delay. Default 30000 (30 s). */
  initialReadinessDelayMs?: number;
  /** Metric window (a CPU sample must cover one window after the last readiness transition). Default 15000. */
  metricWindowMs?: number;
}

export interface HpaResult {
  /** Proposed replicas for this metric (before behavior and min/max). */
  replicas: number;
  /** Resource utilization targets: current utilization in integer percent (ready instances with metrics). */
  utilization?: number;
  /** Average value (pods, resource average value) or the metric value (object/external). */
  usage?: number;
  /** Usage ratio of the first pass (current / target). */
  ratio: number;
  /**
   * Demand in replicas, unrounded: first-pass ratio × instances with metrics (no fill-in), so instances that
   * are still starting do not inflate it. Shoal's panic mode and forecast use it.
   */
  rawReplicas: number;
  /** Ready instances with metrics (the multiplier of the plain path). */
  readyCount: number;
  missingCount: number;
  unreadyCount: number;
}

export interface Tolerances {
  up: number;
  down: number;
}

export const HPA_DEFAULTS = Object.freeze({
  tolerance: 0.1,
  cpuInitializationPeriodMs: 300_000,
  initialReadinessDelayMs: 30_000,
  metricWindowMs: 15_000,
});

export function resolveTolerance(name: string, input: ToleranceInput | undefined, fallback: number): Tolerances {
  if (input === undefined) return { up: fallback, down: fallback };
  if (typeof input === 'number') {
    assertNonNegativeNumber(name, input);
    return { up: input, down: input };
  }
  checkObject(name, input);
  const up = input.up ?? fallback;
  const down = input.down ?? fallback;
  assertNonNegativeNumber(`${name}.up`, up);
  assertNonNegativeNumber(`${name}.down`, down);
  return { up, down };
}

/** `(1 - down) <= ratio <= (1 + up)`, as Kubernetes' `Tolerances.isWithin`. */
export function withinTolerance(t: Tolerances, ratio: number): boolean {
  return 1.0 - t.down <= ratio && ratio <= 1.0 + t.up;
}

/** Kubernetes keeps metric values as int64 milli-units. */
function milli(value: number): number {
  return Math.round(value * 1000);
}

interface Grouped {
  readyCount: number;
  unready: HpaInstance[];
  missing: HpaInstance[];
  counted: HpaInstance[];
}

export interface CalcOptions {
  tolerances: Tolerances;
  cpuInitializationPeriodMs: number;
  initialReadinessDelayMs: number;
  metricWindowMs: number;
  now: number;
}

function groupInstances(
  instances: readonly HpaInstance[],
  hasMetric: (i: HpaInstance) => boolean,
  cpu: boolean,
  o: CalcOptions,
): Grouped {
  const g: Grouped = { readyCount: 0, unready: [], missing: [], counted: [] };
  for (const inst of instances) {
    if (inst.deleting === true || inst.phase === 'failed') continue; // ignored entirely
    if (inst.phase === 'pending') {
      g.unready.push(inst);
      continue;
    }
    if (!hasMetric(inst)) {
      g.missing.push(inst);
      continue;
    }
    if (cpu) {
      const ready = inst.ready ?? true;
      // Omitted times are Go's zero time: long ago, and a readiness transition at start.
      const startedAt = inst.startedAt ?? 0;
      const transition = inst.readySince ?? startedAt;
      let unready: boolean;
      if (startedAt + o.cpuInitializationPeriodMs > o.now) {
        const sampledAt = inst.sampledAt ?? Number.POSITIVE_INFINITY;
        unready = !ready || sampledAt < transition + o.metricWindowMs;
      } else {
        unready = !ready && startedAt + o.initialReadinessDelayMs > transition;
      }
      if (unready) {
        g.unready.push(inst);
        continue;
      }
    }
    g.readyCount++;
    g.counted.push(inst);
  }
  return g;
}

/** Integer-percent utilization and its ratio, as `GetResourceUtilizationRatio`. */
function utilizationRatio(
  values: ReadonlyArray<{ usage: number; request: number }>,
  targetPercent: number,
): { ratio: number; utilization: number; average: number } {
  let usageTotal = 0;
  let requestTotal = 0;
  for (const v of values) {
    usageTotal += v.usage;
    requestTotal += v.request;
  }
  if (requestTotal === 0) {
    throw new PolicyMetricError('SHOAL_ERR_POLICY_NO_METRICS', 'no metrics returned matched known instances');
  }
  const utilization = Math.trunc((usageTotal * 100) / requestTotal);
  return { ratio: utilization / targetPercent, utilization, average: Math.trunc(usageTotal / values.length) };
}

/** Integer milli-unit average and its ratio, as `GetMetricUsageRatio`. */
function usageRatio(values: readonly number[], targetMilli: number): { ratio: number; usage: number } {
  let total = 0;
  for (const v of values) total += v;
  const usage = Math.trunc(total / values.length);
  return { ratio: usage / targetMilli, usage };
}

function resourceReplicas(
  currentReplicas: number,
  name: string,
  targetPercent: number,
  instances: readonly HpaInstance[],
  o: CalcOptions,
): HpaResult {
  const cpu = name === 'cpu';
  const g = groupInstances(instances, (i) => i.usage !== undefined, cpu, o);
  if (g.counted.length === 0) {
    throw new PolicyMetricError(
      'SHOAL_ERR_POLICY_NO_METRICS',
      `did not receive ${name} metrics for targeted instances (instances might be unready)`,
    );
  }
  const requestOf = (i: HpaInstance): number => {
    if (i.request === undefined || !(i.request > 0)) {
      throw new PolicyMetricError(
        'SHOAL_ERR_POLICY_MISSING_REQUEST',
        `missing request for ${name} on instance ${i.id}`,
      );
    }
    return milli(i.request);
  };
  const base = g.counted.map((i) => ({ usage: milli(i.usage as number), request: requestOf(i) }));
  const first = utilizationRatio(base, targetPercent);
  const ratio = first.ratio;
  const scaleUpWithUnready = g.unready.length > 0 && ratio > 1.0;
  const result = (replicas: number, rawReplicas: number): HpaResult => ({
    replicas,
    utilization: first.utilization,
    usage: first.average / 1000,
    ratio,
    rawReplicas,
    readyCount: g.readyCount,
    missingCount: g.missing.length,
    unreadyCount: g.unready.length,
  });
  if (!scaleUpWithUnready && g.missing.length === 0) {
    const raw = ratio * g.readyCount;
    if (withinTolerance(o.tolerances, ratio)) return result(currentReplicas, raw);
    return result(Math.ceil(raw), raw);
  }
  const filled = base.slice();
  if (g.missing.length > 0) {
    if (ratio < 1.0) {
      const fallback = Math.max(100, targetPercent);
      for (const i of g.missing) {
        const request = requestOf(i);
        filled.push({ usage: Math.trunc((request * fallback) / 100), request });
      }
    } else if (ratio > 1.0) {
      for (const i of g.missing) filled.push({ usage: 0, request: requestOf(i) });
    }
  }
  if (scaleUpWithUnready) {
    for (const i of g.unready) {
      if (i.request === undefined) continue; // pending instance without a request: no entry, as in Kubernetes
      filled.push({ usage: 0, request: requestOf(i) });
    }
  }
  const newRatio = utilizationRatio(filled, targetPercent).ratio;
  const raw = newRatio * filled.length;
  const demand = ratio * g.readyCount;
  if (withinTolerance(o.tolerances, newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0)) {
    return result(currentReplicas, demand);
  }
  const newReplicas = Math.ceil(raw);
  // The rolling-update guard (kubernetes#84142, PR #102910): never move against the ratio's direction.
  if ((newRatio < 1.0 && newReplicas > currentReplicas) || (newRatio > 1.0 && newReplicas < currentReplicas)) {
    return result(currentReplicas, demand);
  }
  return result(newReplicas, demand);
}

function plainReplicas(
  currentReplicas: number,
  targetMilli: number,
  valueOf: (i: HpaInstance) => number | undefined,
  cpu: boolean,
  instances: readonly HpaInstance[],
  o: CalcOptions,
): HpaResult {
  const g = groupInstances(instances, (i) => valueOf(i) !== undefined, cpu, o);
  if (g.counted.length === 0) {
    throw new PolicyMetricError(
      'SHOAL_ERR_POLICY_NO_METRICS',
      'did not receive metrics for targeted instances (instances might be unready)',
    );
  }
  const base = g.counted.map((i) => milli(valueOf(i) as number));
  const first = usageRatio(base, targetMilli);
  const ratio = first.ratio;
  const scaleUpWithUnready = g.unready.length > 0 && ratio > 1.0;
  const result = (replicas: number, rawReplicas: number): HpaResult => ({
    replicas,
    usage: first.usage / 1000,
    ratio,
    rawReplicas,
    readyCount: g.readyCount,
    missingCount: g.missing.length,
    unreadyCount: g.unready.length,
  });
  if (!scaleUpWithUnready && g.missing.length === 0) {
    const raw = ratio * g.readyCount;
    if (withinTolerance(o.tolerances, ratio)) return result(currentReplicas, raw);
    return result(Math.ceil(raw), raw);
  }
  const filled = base.slice();
  if (g.missing.length > 0 && ratio !== 1.0) {
    // Scale-down: missing instances count as exactly the target; scale-up: as 0.
    const fill = ratio < 1.0 ? targetMilli : 0;
    for (let k = 0; k < g.missing.length; k++) filled.push(fill);
  }
  if (scaleUpWithUnready) for (let k = 0; k < g.unready.length; k++) filled.push(0);
  const newRatio = usageRatio(filled, targetMilli).ratio;
  const raw = newRatio * filled.length;
  const demand = ratio * g.readyCount;
  if (withinTolerance(o.tolerances, newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0)) {
    return result(currentReplicas, demand);
  }
  const newReplicas = Math.ceil(raw);
  if ((newRatio < 1.0 && newReplicas > currentReplicas) || (newRatio > 1.0 && newReplicas < currentReplicas)) {
    return result(currentReplicas, demand);
  }
  return result(newReplicas, demand);
}

function readyRunningCount(instances: readonly HpaInstance[]): number {
  let n = 0;
  for (const i of instances) if ((i.phase ?? 'running') === 'running' && (i.ready ?? true)) n++;
  return n;
}

function sumValue(name: string, value: number | number[]): number {
  if (Array.isArray(value)) {
    let total = 0;
    value.forEach((v, k) => {
      assertFiniteNumber(`${name}[${k}]`, v);
      total += milli(v);
    });
    return total;
  }
  assertFiniteNumber(name, value);
  return milli(value);
}

function objectReplicas(
  currentReplicas: number,
  metric: Extract<HpaMetric, { type: 'object' | 'external' }>,
  instances: readonly HpaInstance[],
  o: CalcOptions,
): HpaResult {
  const usage = sumValue('metric.value', metric.value);
  const base = { usage: usage / 1000, readyCount: 0, missingCount: 0, unreadyCount: 0 };
  if ('averageValue' in metric.target) {
    const target = milli(metric.target.averageValue);
    const ratio = usage / (target * currentReplicas);
    const raw = usage / target;
    const replicas = withinTolerance(o.tolerances, ratio) ? currentReplicas : Math.ceil(raw);
    return { ...base, replicas, ratio, rawReplicas: raw };
  }
  const target = milli(metric.target.value);
  const ratio = usage / target;
  if (currentReplicas === 0) return { ...base, replicas: Math.ceil(ratio), ratio, rawReplicas: ratio };
  if (instances.length === 0) {
    throw new PolicyMetricError('SHOAL_ERR_POLICY_NO_INSTANCES', 'no instances while calculating replica count');
  }
  const ready = readyRunningCount(instances);
  const raw = ratio * ready;
  if (withinTolerance(o.tolerances, ratio))
    return { ...base, replicas: currentReplicas, ratio, rawReplicas: raw, readyCount: ready };
  return { ...base, replicas: Math.ceil(raw), ratio, rawReplicas: raw, readyCount: ready };
}

function validateMetric(input: unknown): asserts input is HpaMetric {
  assertObject('metric', input);
  const metric = input;
  assertOneOf('metric.type', metric.type, ['resource', 'pods', 'object', 'external'] as const);
  assertObject('metric.target', metric.target);
  const t = metric.target;
  if ('averageUtilization' in t) {
    if (metric.type !== 'resource')
      throw new InvalidArgumentError(`metric.target.averageUtilization is only valid for resource metrics`);
    assertInteger('metric.target.averageUtilization', t.averageUtilization, 1);
  } else if ('averageValue' in t) {
    assertFiniteNumber('metric.target.averageValue', t.averageValue);
    if (!((t.averageValue as number) > 0))
      throw new InvalidArgumentError(`metric.target.averageValue must be > 0, got ${String(t.averageValue)}`);
  } else if ('value' in t) {
    if (metric.type !== 'object' && metric.type !== 'external')
      throw new InvalidArgumentError(`metric.target.value is only valid for object and external metrics`);
    assertFiniteNumber('metric.target.value', t.value);
    if (!((t.value as number) > 0))
      throw new InvalidArgumentError(`metric.target.value must be > 0, got ${String(t.value)}`);
  } else {
    throw new InvalidArgumentError('metric.target must have averageUtilization, averageValue or value');
  }
  if (metric.type === 'resource' && typeof metric.name !== 'string')
    throw new InvalidArgumentError(`metric.name must be a non-empty string, got ${typeof metric.name}`);
}

/** Calculation core shared by `computeHpaReplicas` and `decide` (inputs already validated). */
export function calculateReplicas(
  currentReplicas: number,
  metric: HpaMetric,
  instances: readonly HpaInstance[],
  o: CalcOptions,
): HpaResult {
  switch (metric.type) {
    case 'resource':
      if ('averageUtilization' in metric.target) {
        return resourceReplicas(currentReplicas, metric.name, metric.target.averageUtilization, instances, o);
      }
      return plainReplicas(
        currentReplicas,
        milli(metric.target.averageValue),
        (i) => i.usage,
        metric.name === 'cpu',
        instances,
        o,
      );
    case 'pods':
      return plainReplicas(currentReplicas, milli(metric.target.averageValue), (i) => i.value, false, instances, o);
    case 'object':
    case 'external':
      return objectReplicas(currentReplicas, metric, instances, o);
  }
}

/**
 * Kubernetes' replica calculator for one metric. Throws `InvalidArgumentError` for bad input and
 * `PolicyMetricError` where Kubernetes returns an error (no metrics, no instances, missing request).
 */
export function computeHpaReplicas(input: HpaInput): HpaResult {
  checkObject('input', input);
  assertInteger('currentReplicas', input.currentReplicas, 0);
  validateMetric(input.metric);
  if (!Array.isArray(input.instances)) throw new InvalidArgumentError('instances must be an array');
  assertFiniteNumber('now', input.now);
  input.instances.forEach((inst, k) => {
    checkObject(`instances[${k}]`, inst);
    if (typeof inst.id !== 'string') throw new InvalidArgumentError(`instances[${k}].id must be a string`);
    for (const f of ['startedAt', 'readySince', 'sampledAt', 'value', 'usage', 'request'] as const) {
      if (inst[f] !== undefined) assertFiniteNumber(`instances[${k}].${f}`, inst[f]);
    }
    if (inst.phase !== undefined) assertOneOf(`instances[${k}].phase`, inst.phase, ['running', 'pending', 'failed']);
  });
  const cpuInitializationPeriodMs = input.cpuInitializationPeriodMs ?? HPA_DEFAULTS.cpuInitializationPeriodMs;
  const initialReadinessDelayMs = input.initialReadinessDelayMs ?? HPA_DEFAULTS.initialReadinessDelayMs;
  const metricWindowMs = input.metricWindowMs ?? HPA_DEFAULTS.metricWindowMs;
  assertNonNegativeNumber('cpuInitializationPeriodMs', cpuInitializationPeriodMs);
  assertNonNegativeNumber('initialReadinessDelayMs', initialReadinessDelayMs);
  assertNonNegativeNumber('metricWindowMs', metricWindowMs);
  if ((input.metric.type === 'resource' || input.metric.type === 'pods') && input.instances.length === 0) {
    throw new PolicyMetricError('SHOAL_ERR_POLICY_NO_INSTANCES', 'no instances while calculating replica count');
  }
  return calculateReplicas(input.currentReplicas, input.metric, input.instances, {
    tolerances: resolveTolerance('tolerance', input.tolerance, HPA_DEFAULTS.tolerance),
    cpuInitializationPeriodMs,
    initialReadinessDelayMs,
    metricWindowMs,
    now: input.now,
  });
}
