/**
 * `decide()`: one scaling decision. Pure: the time comes from `observation.now`, the memory from `state`
 * (plain JSON, returned updated), so the same inputs always give the same decision.
 *
 * A pipeline of named stages (HPA's `reconcileAutoscaler` with Shoal's additions marked *), one file each under
 * `stages/`:
 *  1. `clampToRange`: out-of-range current count → clamp to [min, max] (min raised by active schedules*);
 *  2. `proposeTargets`: one proposal per target through the Kubernetes replica calculator; `applySlo`: the latency
 *     SLO* adds pressure; the maximum wins; `blockScaleDownOnFailure`: a failed target blocks scale-down;
 *  3. `recordDemand`, `sizeFromStableWindow`*: size from the demand averaged over `stableWindowMs` (0: keep it);
 *  4. `applyPanic`* (Knative): short-window demand ≥ threshold × ready → scale to it at once, never down;
 *  5. `applyForecast`*: a line through the recent demand, evaluated `horizonMs` ahead, can only raise the proposal;
 *     `applyHeadroom`*: outside panic, a scale-up adds `scaleUpHeadroom` to the unrounded demand behind it;
 *  6. `stabilizeAndLimit`: stabilization windows, then rate policies and min/max (HPA behavior);
 *  7. `finishDecision`: scale events, state pruning, victims for a scale-down.
 */
import { InvalidArgumentError } from '@shoal/core';
import type { DecideContext, Decision } from './decision.js';
import type { Observation } from './observation.js';
import { validateObservation } from './observation.js';
import { resolvePolicy } from './policy.js';
import type { Policy, PolicyInput } from './policy.js';
import { restoreState } from './state.js';
import type { PolicyState } from './state.js';
import { finishDecision } from './stages/finish.js';
import { applyForecast, applyHeadroom } from './stages/forecast.js';
import { stabilizeAndLimit } from './stages/limits.js';
import { applyPanic } from './stages/panic.js';
import { clampToRange, scheduleMinimum } from './stages/range.js';
import { applySlo } from './stages/slo.js';
import { recordDemand, sizeFromStableWindow } from './stages/stable-window.js';
import { blockScaleDownOnFailure, proposeTargets } from './stages/targets.js';

export type { Decision, TargetProposal } from './decision.js';

/** Validates the inputs and builds what every stage reads. */
export function createDecideContext(
  policy: Policy,
  observation: Observation,
  stateInput: PolicyState | undefined | null,
): DecideContext {
  validateObservation(observation);
  const state = restoreState(stateInput);
  const now = observation.now;
  if (state.lastDecisionAt !== null && now < state.lastDecisionAt) {
    throw new InvalidArgumentError(
      `observation.now must not go back in time (previous decision at ${state.lastDecisionAt}), got ${now}`,
    );
  }
  const reasons: string[] = [];
  let readyCount = 0;
  for (const i of observation.instances) {
    if (i.ready && i.deleting !== true && (i.phase ?? 'running') === 'running') readyCount++;
  }
  return {
    policy,
    observation,
    state,
    now,
    current: observation.currentReplicas,
    minReplicas: scheduleMinimum(policy, now, reasons),
    maxReplicas: policy.maxReplicas,
    readyCount,
    // A decision with demand leaves its own sample, which outlives the next decision's start whenever panic mode
    // (and so its window) is on.
    fresh: state.samples.length === 0 && state.recommendations.length === 0,
    reasons,
    proposals: [],
  };
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
  const ctx = createDecideContext(resolvePolicy(policyInput), observation, stateInput);
  const clamped = clampToRange(ctx);
  if (clamped) return finishDecision(ctx, clamped.replicas, clamped.replicas, clamped.limit, false);

  const sizing = proposeTargets(ctx);
  applySlo(ctx, sizing);
  if (sizing.proposal < 0) {
    ctx.reasons.push('no usable metric: keeping the current count');
    return finishDecision(ctx, ctx.current, ctx.current, 'DesiredWithinRange', ctx.state.panic.since !== null);
  }
  blockScaleDownOnFailure(ctx, sizing);
  recordDemand(ctx, sizing);
  sizeFromStableWindow(ctx, sizing);
  applyPanic(ctx, sizing);
  applyForecast(ctx, sizing);
  applyHeadroom(ctx, sizing);
  const recommendation = sizing.proposal;
  const limited = stabilizeAndLimit(ctx, sizing);
  return finishDecision(ctx, limited.replicas, recommendation, limited.limit, sizing.panicking);
}
