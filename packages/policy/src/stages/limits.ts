/**
 * Stage 6: stabilization windows, then rate policies and min/max (HPA behavior). Demand over the panic threshold
 * skips the scale-up window; a panic's hold phase does not.
 */
import { limitLegacy, limitRate, stabilize, stabilizeLegacy } from '../behavior.js';
import type { DecideContext, LimitReason, Sizing } from '../decision.js';
import { pruneBefore } from '../state.js';

export interface Limited {
  replicas: number;
  limit: LimitReason;
}

/** Kubernetes without spec.behavior: the highest recommendation in the down window, then max(2 × current, 4). */
export function limitLegacyPath(ctx: DecideContext, sizing: Sizing): Limited {
  const { policy, state, now, current, reasons } = ctx;
  const proposal = sizing.proposal;
  const windowSeconds = policy.behavior.scaleDown.stabilizationWindowSeconds;
  const stabilized = stabilizeLegacy(windowSeconds, now, proposal, state.recommendations);
  state.recommendations.push({ t: now, replicas: proposal });
  pruneBefore(state.recommendations, now - windowSeconds * 1000 - 1);
  if (stabilized !== proposal) {
    reasons.push(`stabilized at ${stabilized} (highest recommendation over ${windowSeconds} s, legacy path)`);
  }
  const bypass = sizing.panicking && policy.panic.bypassRateLimit;
  const legacy = limitLegacy(current, stabilized, ctx.minReplicas, ctx.maxReplicas, bypass);
  if (legacy.limit !== 'DesiredWithinRange') reasons.push(`${legacy.limit}: ${legacy.replicas}`);
  return { replicas: legacy.replicas, limit: legacy.limit };
}

/** The stabilization windows of `behavior` (with Knative's desiredPanic while over the threshold). */
export function stabilizeProposal(ctx: DecideContext, sizing: Sizing): number {
  const { policy, state, now, current, reasons } = ctx;
  const behavior = policy.behavior;
  const proposal = sizing.proposal;
  const windowed = stabilize(behavior, now, current, proposal, state.recommendations).replicas;
  // Knative's desiredPanic: straight to the demand averaged over the panic window; what one report asks beyond
  // that (a 1-s sample 2-3σ high) waits for the scale-up window like any other scale-up.
  const stable =
    sizing.panicOver && proposal > current ? Math.min(proposal, Math.max(sizing.panicNeed, windowed)) : windowed;
  state.recommendations.push({ t: now, replicas: proposal });
  pruneBefore(
    state.recommendations,
    now - Math.max(behavior.scaleUp.stabilizationWindowSeconds, behavior.scaleDown.stabilizationWindowSeconds) * 1000,
  );
  if (stable !== proposal) {
    reasons.push(
      stable > proposal
        ? `scale-down stabilized at ${stable} (max over ${behavior.scaleDown.stabilizationWindowSeconds} s)`
        : `scale-up stabilized at ${stable} (min over ${behavior.scaleUp.stabilizationWindowSeconds} s)`,
    );
  }
  return stable;
}

/** Stabilization, then the rate policies and min/max; the legacy path when the behavior says so. */
export function stabilizeAndLimit(ctx: DecideContext, sizing: Sizing): Limited {
  const { policy, state, now, current, reasons } = ctx;
  if (policy.behavior.legacy === true) return limitLegacyPath(ctx, sizing);
  const stable = stabilizeProposal(ctx, sizing);
  const limited = limitRate(
    policy.behavior,
    now,
    current,
    stable,
    ctx.minReplicas,
    ctx.maxReplicas,
    state.scaleUpEvents,
    state.scaleDownEvents,
    sizing.panicking && policy.panic.bypassRateLimit,
  );
  if (limited.limit !== 'DesiredWithinRange') reasons.push(`${limited.limit}: ${limited.replicas}`);
  return { replicas: limited.replicas, limit: limited.limit };
}
