/**
 * `decide()`: one scaling decision. Pure: the time comes from `observation.now`, the memory from `state`
 * (plain JSON, returned updated), so the same inputs always give the same decision.
 *
 * Pipeline (HPA's `reconcileAutoscaler` with Shoal's additions marked *):
 *  1. out-of-range current count → clamp to [min, max] (min raised by active schedules*);
 *  2. one proposal per target through the Kubernetes replica calculator; the latency SLO* adds pressure;
 *     the maximum wins; a failed target blocks scale-down;
 *  3. stable window*: size from the demand averaged over `stableWindowMs` (0: keep the proposal);
 *  4. panic mode* (Knative): short-window demand ≥ threshold × ready → scale to it at once, never down;
 *  5. forecast*: a line through the recent demand, evaluated `horizonMs` ahead, can only raise the proposal;
 *     outside panic, a scale-up adds `scaleUpHeadroom`* to the unrounded demand behind it;
 *  6. stabilization windows, then rate policies and min/max (HPA behavior);
 *  7. victims for a scale-down.
 */
import { InvalidArgumentError } from '@shoal/core';
import { limitLegacy, limitRate, longestPeriodMs, stabilize, stabilizeLegacy } from './behavior.js';
import { lastCronMatch } from './cron.js';
import { isShoalError } from '@shoal/core';
import { calculateReplicas, withinTolerance } from './hpa-replicas.js';
import type { CalcOptions, HpaInstance, HpaMetric, HpaResult } from './hpa-replicas.js';
import type { Observation, ObservedInstance } from './observation.js';
import { metricValue, validateObservation } from './observation.js';
import { resolvePolicy } from './policy.js';
import type { Policy, PolicyInput, Target } from './policy.js';
import { pruneBefore, restoreState } from './state.js';
import type { PolicyState } from './state.js';
import { selectVictims } from './victims.js';

export interface TargetProposal {
  /** `metric` of the target, or `slo:<metric>`. */
  target: string;
  /** Replicas this target asks for (absent when it failed or has no opinion). */
  replicas?: number;
  /** Current / target ratio. */
  ratio?: number;
  /** Why it failed (no metrics, missing request). */
  error?: string;
}

export interface Decision {
  /** Replicas to run. */
  desiredReplicas: number;
  /** State to pass to the next call (plain JSON). */
  state: PolicyState;
  /** Human-readable explanation, one line per step that mattered. */
  reasons: string[];
  /** On scale-down: instance ids to drain, best first (`currentReplicas - desiredReplicas` of them). */
  victims?: string[];
  /** Per-target proposals. */
  proposals: TargetProposal[];
  /** The proposal before stabilization and rate limits. */
  recommendation: number;
  /** The minimum in force (minReplicas raised by active schedules). */
  minReplicas: number;
  panicking: boolean;
  /** Which limit shaped the result: HPA's ScalingLimited reasons. */
  limitedBy: 'ScaleUpLimit' | 'TooManyReplicas' | 'ScaleDownLimit' | 'TooFewReplicas' | 'DesiredWithinRange';
}

function round(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
}

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

function totalOf(t: Target, o: Observation): number | undefined {
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

function proposeTarget(t: Target, o: Observation, calc: CalcOptions): HpaResult {
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

/** Slope (per ms) and value at `at` of the least-squares line through the samples. */
function fitLine(
  samples: ReadonlyArray<{ t: number; d: number }>,
  at: number,
): { slope: number; value: number; r2: number } {
  const n = samples.length;
  let st = 0;
  let sd = 0;
  for (const s of samples) {
    st += s.t;
    sd += s.d;
  }
  const mt = st / n;
  const md = sd / n;
  let num = 0;
  let den = 0;
  let dd = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.d - md);
    den += (s.t - mt) * (s.t - mt);
    dd += (s.d - md) * (s.d - md);
  }
  const slope = den === 0 ? 0 : num / den;
  const r2 = den === 0 || dd === 0 ? 0 : (num * num) / (den * dd);
  return { slope, value: md + slope * (at - mt), r2 };
}

function scheduleMinimum(policy: Policy, now: number, reasons: string[]): number {
  let min = policy.minReplicas;
  for (const s of policy.schedules) {
    if (s.minReplicas <= min) continue;
    const match = lastCronMatch(s.cron, now + s.leadMs, s.durationMs, s.timeZone ?? s.utcOffsetMinutes);
    if (match !== undefined) {
      min = s.minReplicas;
      reasons.push(`schedule ${s.name} (${s.cron.source}) active: minimum ${s.minReplicas} replicas`);
    }
  }
  return Math.min(min, policy.maxReplicas);
}

/**
 * One scaling decision. `policy` may be a resolved `Policy` or raw `PolicyInput` (resolved on each call;
 * resolve once with `resolvePolicy` when deciding often). `state` is the previous decision's `state`
 * (or undefined at first). Throws `InvalidArgumentError` on malformed input.
 */
export function decide(
  policyInput: Policy | PolicyInput,
  observation: Observation,
  stateInput: PolicyState | undefined | null,
): Decision {
  const policy = resolvePolicy(policyInput);
  validateObservation(observation);
  const state = restoreState(stateInput);
  const now = observation.now;
  if (state.lastDecisionAt !== null && now < state.lastDecisionAt) {
    throw new InvalidArgumentError(
      `observation.now must not go back in time (previous decision at ${state.lastDecisionAt}), got ${now}`,
    );
  }
  const reasons: string[] = [];
  /**
   * No demand seen yet (first decision, a lost state, or none with usable metrics so far). A decision with demand
   * leaves its own sample, which outlives the next decision's start whenever panic mode (and so its window) is on.
   */
  const fresh = state.samples.length === 0 && state.recommendations.length === 0;
  const current = observation.currentReplicas;
  const minReplicas = scheduleMinimum(policy, now, reasons);
  const maxReplicas = policy.maxReplicas;
  const proposals: TargetProposal[] = [];
  let readyCount = 0;
  for (const i of observation.instances) {
    if (i.ready && i.deleting !== true && (i.phase ?? 'running') === 'running') readyCount++;
  }

  const finish = (
    desired: number,
    recommendation: number,
    limitedBy: Decision['limitedBy'],
    panicking: boolean,
  ): Decision => {
    if (desired !== current) {
      const events = desired > current ? state.scaleUpEvents : state.scaleDownEvents;
      events.push({ t: now, change: Math.abs(desired - current) });
    }
    pruneBefore(state.scaleUpEvents, now - longestPeriodMs(policy.behavior.scaleUp));
    pruneBefore(state.scaleDownEvents, now - longestPeriodMs(policy.behavior.scaleDown));
    state.lastDecisionAt = now;
    if (panicking) state.panic.maxReplicas = Math.max(state.panic.maxReplicas, desired);
    const decision: Decision = {
      desiredReplicas: desired,
      state,
      reasons,
      proposals,
      recommendation,
      minReplicas,
      panicking,
      limitedBy,
    };
    if (desired < current) {
      decision.victims = selectVictims(policy, observation.instances, current - desired);
      reasons.push(`scale down ${current} → ${desired}; drain ${decision.victims.join(', ') || '(none known)'}`);
    } else if (desired > current) {
      reasons.push(`scale up ${current} → ${desired}`);
    }
    return decision;
  };

  // 1. Out of range: HPA moves straight to the bound (a schedule that begins raises the minimum here).
  if (current > maxReplicas) {
    reasons.push(`current ${current} above maxReplicas ${maxReplicas}`);
    return finish(maxReplicas, maxReplicas, 'TooManyReplicas', false);
  }
  if (current < minReplicas) {
    reasons.push(`current ${current} below minimum ${minReplicas}`);
    return finish(minReplicas, minReplicas, 'TooFewReplicas', false);
  }

  // 2. Target proposals; the maximum wins.
  const calc: CalcOptions = {
    tolerances: policy.tolerance,
    cpuInitializationPeriodMs: policy.cpuInitializationPeriodMs,
    initialReadinessDelayMs: policy.initialReadinessDelayMs,
    metricWindowMs: policy.metricWindowMs,
    now,
  };
  let proposal = -1;
  let demand = 0;
  let failed = 0;
  let hold = false;
  for (const t of policy.targets) {
    try {
      const r = proposeTarget(t, observation, calc);
      proposals.push({ target: t.metric, replicas: r.replicas, ratio: r.ratio });
      proposal = Math.max(proposal, r.replicas);
      demand = Math.max(demand, r.rawReplicas);
      const shown = r.utilization !== undefined ? `${r.utilization}%` : r.usage !== undefined ? round(r.usage) : '';
      reasons.push(
        `${t.metric} ${t.type} ${shown} / target ${t.value}${t.type === 'utilization' ? '%' : ''} → ${r.replicas}`,
      );
    } catch (err) {
      if (!isShoalError(err)) throw err;
      failed++;
      proposals.push({ target: t.metric, error: err.message });
      reasons.push(`${t.metric}: ${err.message}`);
    }
  }
  if (policy.slo) {
    const slo = policy.slo;
    let agg = 0;
    let n = 0;
    for (const i of observation.instances) {
      if (!i.ready || i.deleting === true || (i.phase ?? 'running') !== 'running') continue;
      const v = metricValue(i.metrics, slo.metric);
      if (v === undefined) continue;
      agg = slo.aggregate === 'max' ? Math.max(agg, v) : agg + v;
      n++;
    }
    if (n > 0) {
      const latency = slo.aggregate === 'max' ? agg : agg / n;
      const ratio = latency / slo.thresholdMs;
      // Pressure scales the ready replicas (the ones whose latency we see); starting ones count towards it.
      const base = Math.max(readyCount, 1);
      let settling = false;
      for (const i of observation.instances) {
        if (i.deleting === true || i.phase === 'failed') continue;
        const startingUp = !i.ready && (i.readySince === undefined || i.readySince === i.startedAt);
        if (startingUp || (i.ready && i.readySince !== undefined && i.readySince > now - slo.settleMs)) {
          settling = true;
          break;
        }
      }
      if (ratio > 1 && settling) {
        proposals.push({ target: `slo:${slo.metric}`, replicas: current, ratio });
        proposal = Math.max(proposal, current);
        hold = true;
        reasons.push(
          `SLO ${slo.metric} ${round(latency)} ms above ${slo.thresholdMs} ms while capacity settles: hold ${current}`,
        );
      } else if (ratio > 1) {
        const want = Math.max(base + 1, Math.ceil(base * Math.min(ratio, slo.maxStep)));
        proposals.push({ target: `slo:${slo.metric}`, replicas: want, ratio });
        proposal = Math.max(proposal, want);
        demand = Math.max(demand, base * Math.min(ratio, slo.maxStep));
        reasons.push(`SLO ${slo.metric} ${round(latency)} ms above ${slo.thresholdMs} ms → ${want}`);
      } else if (ratio > slo.holdFraction) {
        proposals.push({ target: `slo:${slo.metric}`, replicas: current, ratio });
        proposal = Math.max(proposal, current);
        hold = true;
        reasons.push(`SLO ${slo.metric} ${round(latency)} ms near ${slo.thresholdMs} ms: hold ${current}`);
      } else {
        proposals.push({ target: `slo:${slo.metric}`, ratio });
      }
    }
  }
  if (proposal < 0) {
    reasons.push('no usable metric: keeping the current count');
    return finish(current, current, 'DesiredWithinRange', state.panic.since !== null);
  }
  if (failed > 0 && proposal < current) {
    reasons.push(`${failed} target(s) failed: not scaling down`);
    proposal = current;
  }

  // 3. Demand history; with a stable window, size from the average demand instead (Knative's stable window).
  state.samples.push({ t: now, d: demand });
  /** The unrounded replicas of demand the proposal was sized from (headroom is added to it, not to the count). */
  let sizedDemand = demand;
  const keepMs = Math.max(
    policy.panic.enabled ? policy.panic.windowMs : 0,
    policy.forecast.enabled ? policy.forecast.windowMs : 0,
    policy.stableWindowMs,
  );
  pruneBefore(state.samples, now - keepMs);
  if (policy.stableWindowMs > 0) {
    let sum = 0;
    let n = 0;
    for (const s of state.samples) {
      if (s.t > now - policy.stableWindowMs) {
        sum += s.d;
        n++;
      }
    }
    const avg = sum / n;
    sizedDemand = avg;
    let sized = Math.ceil(avg - 1e-9);
    if (current > 0 && withinTolerance(policy.tolerance, avg / current)) sized = current;
    if ((hold || failed > 0) && sized < current) sized = current;
    if (sized !== proposal) {
      reasons.push(`demand averaged over ${round(policy.stableWindowMs / 1000)} s: ${round(avg)} replicas → ${sized}`);
    }
    proposal = sized;
  }

  // 4. Panic mode (Knative): short-window demand vs ready replicas.
  let panicking = false;
  /** Demand is over the panic threshold now (not just inside a panic's hold). */
  let panicOver = false;
  /** Replicas the panic window's average demand asks for. */
  let panicNeed = 0;
  if (policy.panic.enabled) {
    const p = policy.panic;
    let sum = 0;
    let n = 0;
    for (const s of state.samples) {
      if (s.t > now - p.windowMs) {
        sum += s.d;
        n++;
      }
    }
    const panicDemand = n > 0 ? sum / n : demand;
    panicNeed = Math.ceil(panicDemand - 1e-9);
    const over = panicDemand / Math.max(1, readyCount) >= p.threshold;
    if (fresh && p.onStart && readyCount > 1 && !over) {
      // Knative: a new autoscaler starts in panic, so its first seconds of data cannot scale a service down.
      state.panic = { since: now, lastOverAt: now, maxReplicas: current };
      reasons.push(`panic: fresh state with ${readyCount} ready instances (no scale-down while it lasts)`);
    }
    panicOver = over;
    if (over) {
      if (state.panic.since === null) {
        state.panic.since = now;
        state.panic.maxReplicas = current;
        reasons.push(
          `panic: ${round(panicDemand)} replicas of demand over ${p.windowMs} ms ≥ ${p.threshold}× ${Math.max(1, readyCount)} ready`,
        );
      }
      state.panic.lastOverAt = now;
    } else if (state.panic.since !== null && (state.panic.lastOverAt ?? now) + p.stableWindowMs <= now) {
      reasons.push(`panic over after ${round((now - state.panic.since) / 1000)} s`);
      state.panic = { since: null, lastOverAt: null, maxReplicas: 0 };
    }
    if (state.panic.since !== null) {
      panicking = true;
      // While demand is over the threshold the short-window demand sizes the floor; in the panic's hold phase the
      // floor is the highest count decided in the panic (a backlog draining on fresh replicas inflates the demand
      // for a report or two, and sizing from it overshot a 10× step by 1-3 replicas that were then kept).
      const floor = over
        ? Math.max(current, state.panic.maxReplicas, panicNeed)
        : Math.max(current, state.panic.maxReplicas);
      if (floor > proposal) {
        reasons.push(`panic: no scale-down, at least ${floor}`);
        proposal = floor;
      }
    }
  } else if (state.panic.since !== null) {
    state.panic = { since: null, lastOverAt: null, maxReplicas: 0 };
  }

  // 5. Forecast: scale ahead of a ramp (panic already covers spikes).
  if (policy.forecast.enabled && !panicking) {
    const f = policy.forecast;
    const window = state.samples.filter((s) => s.t > now - f.windowMs);
    const first = window[0];
    if (window.length >= 3 && first !== undefined && now - first.t >= f.windowMs / 2) {
      const line = fitLine(window, now + f.horizonMs);
      if (line.slope > 0 && line.r2 >= 0.6) {
        const predicted = Math.min(line.value, demand * f.maxFactor);
        const want = Math.ceil(predicted - 1e-9);
        if (want > proposal && want > current * (1 + policy.tolerance.up)) {
          reasons.push(`forecast: demand ${round(predicted)} in ${round(f.horizonMs / 1000)} s → ${want}`);
          proposal = want;
          sizedDemand = predicted;
        }
      }
    }
  }

  // Headroom goes on the unrounded demand: 10 % of 1.2 replicas is not a whole extra replica (adding it to the
  // rounded-up count did that, which made small services pay 30-100 % extra for every scale-up).
  if (policy.scaleUpHeadroom > 0 && proposal > current && !panicking) {
    const raised = Math.max(proposal, Math.ceil(sizedDemand * (1 + policy.scaleUpHeadroom) - 1e-9));
    if (raised > proposal) {
      reasons.push(
        `headroom ${round(policy.scaleUpHeadroom * 100)} % over ${round(sizedDemand)} replicas of demand: ${proposal} → ${raised}`,
      );
      proposal = raised;
    }
  }
  // 6. Stabilization (demand over the panic threshold skips the scale-up window; a panic's hold phase does not),
  //    then rate limits and min/max.
  const recommendation = proposal;
  const behavior = policy.behavior;
  if (behavior.legacy === true) {
    // Kubernetes without spec.behavior: the highest recommendation in the down window, then max(2 × current, 4).
    const windowSeconds = behavior.scaleDown.stabilizationWindowSeconds;
    const stabilized = stabilizeLegacy(windowSeconds, now, proposal, state.recommendations);
    state.recommendations.push({ t: now, replicas: proposal });
    pruneBefore(state.recommendations, now - windowSeconds * 1000 - 1);
    if (stabilized !== proposal) {
      reasons.push(`stabilized at ${stabilized} (highest recommendation over ${windowSeconds} s, legacy path)`);
    }
    const legacy = limitLegacy(
      current,
      stabilized,
      minReplicas,
      maxReplicas,
      panicking && policy.panic.bypassRateLimit,
    );
    if (legacy.limit !== 'DesiredWithinRange') reasons.push(`${legacy.limit}: ${legacy.replicas}`);
    return finish(legacy.replicas, recommendation, legacy.limit, panicking);
  }
  const stable =
    panicOver && proposal > current
      ? // Knative's desiredPanic: straight to the demand averaged over the panic window; what one report asks
        // beyond that (a 1-s sample 2-3σ high) waits for the scale-up window like any other scale-up.
        {
          replicas: Math.min(
            proposal,
            Math.max(panicNeed, stabilize(behavior, now, current, proposal, state.recommendations).replicas),
          ),
        }
      : stabilize(behavior, now, current, proposal, state.recommendations);
  state.recommendations.push({ t: now, replicas: proposal });
  pruneBefore(
    state.recommendations,
    now - Math.max(behavior.scaleUp.stabilizationWindowSeconds, behavior.scaleDown.stabilizationWindowSeconds) * 1000,
  );
  if (stable.replicas !== proposal) {
    reasons.push(
      stable.replicas > proposal
        ? `scale-down stabilized at ${stable.replicas} (max over ${behavior.scaleDown.stabilizationWindowSeconds} s)`
        : `scale-up stabilized at ${stable.replicas} (min over ${behavior.scaleUp.stabilizationWindowSeconds} s)`,
    );
  }
  const limited = limitRate(
    behavior,
    now,
    current,
    stable.replicas,
    minReplicas,
    maxReplicas,
    state.scaleUpEvents,
    state.scaleDownEvents,
    panicking && policy.panic.bypassRateLimit,
  );
  if (limited.limit !== 'DesiredWithinRange') reasons.push(`${limited.limit}: ${limited.replicas}`);
  return finish(limited.replicas, recommendation, limited.limit, panicking);
}
