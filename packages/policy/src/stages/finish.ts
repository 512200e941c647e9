/** Stage 7: record the scale event, prune the state, pick the victims of a scale-down, build the decision. */
import { longestPeriodMs } from '../behavior.js';
import type { DecideContext, Decision, LimitReason } from '../decision.js';
import { pruneBefore } from '../state.js';
import { selectVictims } from '../victims.js';

export function finishDecision(
  ctx: DecideContext,
  desired: number,
  recommendation: number,
  limitedBy: LimitReason,
  panicking: boolean,
): Decision {
  const { policy, state, now, current, reasons } = ctx;
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
    proposals: ctx.proposals,
    recommendation,
    minReplicas: ctx.minReplicas,
    panicking,
    limitedBy,
  };
  if (desired < current) {
    decision.victims = selectVictims(policy, ctx.observation.instances, current - desired);
    reasons.push(`scale down ${current} → ${desired}; drain ${decision.victims.join(', ') || '(none known)'}`);
  } else if (desired > current) {
    reasons.push(`scale up ${current} → ${desired}`);
  }
  return decision;
}
