/** Stage 2: one proposal per target through the Kubernetes replica calculator; the maximum wins. */
import { InvalidArgumentError, isShoalError } from '@shoal/core';
import { formatNumber, type DecideContext, type Sizing } from '../decision.js';
import { calculateReplicas } from '../hpa-replicas.js';
import type { CalcOptions, HpaInstance, HpaMetric, HpaResult } from '../hpa-replicas.js';
import { metricValue } from '../observation.js';
import type { Observation, ObservedInstance } from '../observation.js';
import type { Target } from '../policy.js';

function toHpaMetric(t: Target): HpaMetric {
  switch (t.type) {
    case 'utilization':
      return { type: 'resource', name: t.metric, target: { averageUtilization: t.value } };
    case 'average':
      return t.metric === 'cpu'
        ? { type: 'resource', name: 'cpu', target: { averageValue: t.value } }
        : { type: 'pods', name: t.metric, target: { averageValue: t.value } };
    case 'total':
      return { type: 'external', name: t.metric, value: 0, target: { averageValue: t.value } };
  }
}

function toHpaInstances(t: Target, instances: readonly ObservedInstance[]): HpaInstance[] {
  const out: HpaInstance[] = new Array(instances.length);
  const plain = t.type === 'average' && t.metric !== 'cpu';
  for (let k = 0; k < instances.length; k++) {
    const i = instances[k] as ObservedInstance;
    const v = metricValue(i.metrics, t.metric);
    // One object shape for every instance (undefined fields mean "omitted" to the calculator).
    out[k] = {
      id: i.id,
      ready: i.ready,
      phase: i.phase,
      deleting: i.deleting,
      startedAt: i.startedAt,
      readySince: i.readySince,
      sampledAt: i.sampledAt,
      value: plain ? v : undefined,
      usage: plain ? undefined : v,
      request: plain ? undefined : (i.requests?.[t.metric] ?? t.request),
    };
  }
  return out;
}

/** A `total` target's value: the service-level metric, else the sum over live instances. */
export function totalOf(t: Target, o: Observation): number | undefined {
  const service = metricValue(o.metrics, t.metric);
  if (service !== undefined) return service;
  let total = 0;
  let seen = false;
  for (const i of o.instances) {
    if (i.deleting === true || i.phase === 'failed') continue;
    const v = metricValue(i.metrics, t.metric);
    if (v !== undefined) {
      total += v;
      seen = true;
    }
  }
  return seen ? total : undefined;
}

/** One target through the replica calculator. Throws a `ShoalError` when the target has no usable data. */
export function proposeTarget(t: Target, o: Observation, calc: CalcOptions): HpaResult {
  if (t.type === 'total') {
    const total = totalOf(t, o);
    if (total === undefined) {
      throw new InvalidArgumentError(`no instance or service value for metric ${t.metric}`);
    }
    const metric: HpaMetric = { type: 'external', name: t.metric, value: total, target: { averageValue: t.value } };
    return calculateReplicas(o.currentReplicas, metric, o.instances as unknown as HpaInstance[], calc);
  }
  return calculateReplicas(o.currentReplicas, toHpaMetric(t), toHpaInstances(t, o.instances), calc);
}

/** Every target's proposal (recorded in `ctx.proposals`); the sizing starts from their maximum. */
export function proposeTargets(ctx: DecideContext): Sizing {
  const { policy, observation, now } = ctx;
  const calc: CalcOptions = {
    tolerances: policy.tolerance,
    cpuInitializationPeriodMs: policy.cpuInitializationPeriodMs,
    initialReadinessDelayMs: policy.initialReadinessDelayMs,
    metricWindowMs: policy.metricWindowMs,
    now,
  };
  const sizing: Sizing = {
    proposal: -1,
    demand: 0,
    sizedDemand: 0,
    failed: 0,
    hold: false,
    panicking: false,
    panicOver: false,
    panicNeed: 0,
  };
  for (const t of policy.targets) {
    try {
      const r = proposeTarget(t, observation, calc);
      ctx.proposals.push({ target: t.metric, replicas: r.replicas, ratio: r.ratio });
      sizing.proposal = Math.max(sizing.proposal, r.replicas);
      sizing.demand = Math.max(sizing.demand, r.rawReplicas);
      const shown =
        r.utilization !== undefined ? `${r.utilization}%` : r.usage !== undefined ? formatNumber(r.usage) : '';
      ctx.reasons.push(
        `${t.metric} ${t.type} ${shown} / target ${t.value}${t.type === 'utilization' ? '%' : ''} → ${r.replicas}`,
      );
    } catch (err) {
      if (!isShoalError(err)) throw err;
      sizing.failed++;
      ctx.proposals.push({ target: t.metric, error: err.message });
      ctx.reasons.push(`${t.metric}: ${err.message}`);
    }
  }
  return sizing;
}

/** A failed target blocks a scale-down (HPA: missing metrics never shrink a service). */
export function blockScaleDownOnFailure(ctx: DecideContext, sizing: Sizing): void {
  if (sizing.failed > 0 && sizing.proposal < ctx.current) {
    ctx.reasons.push(`${sizing.failed} target(s) failed: not scaling down`);
    sizing.proposal = ctx.current;
  }
}
