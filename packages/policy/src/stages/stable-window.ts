/** Stage 3: the demand history; with a stable window, size from the demand averaged over it (Knative). */
import { formatNumber, type DecideContext, type Sizing } from '../decision.js';
import { withinTolerance } from '../hpa-replicas.js';
import type { Policy } from '../policy.js';
import { pruneBefore } from '../state.js';
import type { DemandSample } from '../state.js';

/** How long demand samples are kept: the longest window that reads them. */
export function demandHistoryMs(policy: Policy): number {
  return Math.max(
    policy.panic.enabled ? policy.panic.windowMs : 0,
    policy.forecast.enabled ? policy.forecast.windowMs : 0,
    policy.stableWindowMs,
  );
}

/** Mean demand of the samples newer than `now - windowMs` (undefined when there are none). */
export function averageDemand(samples: readonly DemandSample[], now: number, windowMs: number): number | undefined {
  let sum = 0;
  let n = 0;
  for (const s of samples) {
    if (s.t > now - windowMs) {
      sum += s.d;
      n++;
    }
  }
  return n > 0 ? sum / n : undefined;
}

/** Records this decision's demand and drops samples no window reads any more. */
export function recordDemand(ctx: DecideContext, sizing: Sizing): void {
  ctx.state.samples.push({ t: ctx.now, d: sizing.demand });
  sizing.sizedDemand = sizing.demand;
  pruneBefore(ctx.state.samples, ctx.now - demandHistoryMs(ctx.policy));
}

/** With `stableWindowMs > 0`, the proposal becomes the averaged demand (within tolerance: the current count). */
export function sizeFromStableWindow(ctx: DecideContext, sizing: Sizing): void {
  const { policy, current } = ctx;
  if (policy.stableWindowMs <= 0) return;
  // recordDemand() just added this decision's sample, so the window is never empty.
  const avg = averageDemand(ctx.state.samples, ctx.now, policy.stableWindowMs) as number;
  sizing.sizedDemand = avg;
  let sized = Math.ceil(avg - 1e-9);
  if (current > 0 && withinTolerance(policy.tolerance, avg / current)) sized = current;
  if ((sizing.hold || sizing.failed > 0) && sized < current) sized = current;
  if (sized !== sizing.proposal) {
    ctx.reasons.push(
      `demand averaged over ${formatNumber(policy.stableWindowMs / 1000)} s: ${formatNumber(avg)} replicas → ${sized}`,
    );
  }
  sizing.proposal = sized;
}
