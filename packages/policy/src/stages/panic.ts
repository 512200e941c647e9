/** Stage 4: panic mode (Knative): short-window demand against ready replicas; no scale-down while it lasts. */
import { formatNumber, type DecideContext, type Sizing } from '../decision.js';
import type { PolicyState } from '../state.js';
import { averageDemand } from './stable-window.js';

const CALM: PolicyState['panic'] = { since: null, lastOverAt: null, maxReplicas: 0 };

/** Enters, holds or leaves panic mode, and floors the proposal while it lasts. */
export function applyPanic(ctx: DecideContext, sizing: Sizing): void {
  const { policy, state, now, current, readyCount, reasons } = ctx;
  if (!policy.panic.enabled) {
    if (state.panic.since !== null) state.panic = { ...CALM };
    return;
  }
  const p = policy.panic;
  const panicDemand = averageDemand(state.samples, now, p.windowMs) ?? sizing.demand;
  sizing.panicNeed = Math.ceil(panicDemand - 1e-9);
  const ready = Math.max(1, readyCount);
  const over = panicDemand / ready >= p.threshold;
  if (ctx.fresh && p.onStart && readyCount > 1 && !over) {
    // Knative: a new autoscaler starts in panic, so its first seconds of data cannot scale a service down.
    state.panic = { since: now, lastOverAt: now, maxReplicas: current };
    reasons.push(`panic: fresh state with ${readyCount} ready instances (no scale-down while it lasts)`);
  }
  sizing.panicOver = over;
  if (over) {
    if (state.panic.since === null) {
      state.panic.since = now;
      state.panic.maxReplicas = current;
      reasons.push(
        `panic: ${formatNumber(panicDemand)} replicas of demand over ${p.windowMs} ms ≥ ${p.threshold}× ${ready} ready`,
      );
    }
    state.panic.lastOverAt = now;
  } else if (state.panic.since !== null && (state.panic.lastOverAt ?? now) + p.stableWindowMs <= now) {
    reasons.push(`panic over after ${formatNumber((now - state.panic.since) / 1000)} s`);
    state.panic = { ...CALM };
  }
  if (state.panic.since === null) return;
  sizing.panicking = true;
  // While demand is over the threshold the short-window demand sizes the floor; in the panic's hold phase the
  // floor is the highest count decided in the panic (a backlog draining on fresh replicas inflates the demand
  // for a report or two, and sizing from it overshot a 10× step by 1-3 replicas that were then kept).
  const floor = over
    ? Math.max(current, state.panic.maxReplicas, sizing.panicNeed)
    : Math.max(current, state.panic.maxReplicas);
  if (floor > sizing.proposal) {
    reasons.push(`panic: no scale-down, at least ${floor}`);
    sizing.proposal = floor;
  }
}
