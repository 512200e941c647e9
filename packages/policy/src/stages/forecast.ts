/** Stage 5: forecast (a line through the recent demand can only raise the proposal) and scale-up headroom. */
import { formatNumber, type DecideContext, type Sizing } from '../decision.js';
import type { DemandSample } from '../state.js';

/** Slope (per ms), value at `at` and r² of the least-squares line through the samples. */
export function fitLine(samples: readonly DemandSample[], at: number): { slope: number; value: number; r2: number } {
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

/** Scales ahead of a ramp that fits a rising line (not while panicking: panic covers spikes). */
export function applyForecast(ctx: DecideContext, sizing: Sizing): void {
  const { policy, now, current } = ctx;
  if (!policy.forecast.enabled || sizing.panicking) return;
  const f = policy.forecast;
  const window = ctx.state.samples.filter((s) => s.t > now - f.windowMs);
  const first = window[0];
  if (window.length < 3 || first === undefined || now - first.t < f.windowMs / 2) return;
  const line = fitLine(window, now + f.horizonMs);
  if (!(line.slope > 0 && line.r2 >= 0.6)) return;
  const predicted = Math.min(line.value, sizing.demand * f.maxFactor);
  const want = Math.ceil(predicted - 1e-9);
  if (want > sizing.proposal && want > current * (1 + policy.tolerance.up)) {
    ctx.reasons.push(`forecast: demand ${formatNumber(predicted)} in ${formatNumber(f.horizonMs / 1000)} s → ${want}`);
    sizing.proposal = want;
    sizing.sizedDemand = predicted;
  }
}

/**
 * Outside panic, a scale-up adds `scaleUpHeadroom` to the unrounded demand behind it: 10 % of 1.2 replicas is not
 * a whole extra replica (adding it to the rounded-up count did that, which made small services pay 30-100 % extra
 * for every scale-up).
 */
export function applyHeadroom(ctx: DecideContext, sizing: Sizing): void {
  const headroom = ctx.policy.scaleUpHeadroom;
  if (!(headroom > 0) || sizing.proposal <= ctx.current || sizing.panicking) return;
  const raised = Math.max(sizing.proposal, Math.ceil(sizing.sizedDemand * (1 + headroom) - 1e-9));
  if (raised > sizing.proposal) {
    ctx.reasons.push(
      `headroom ${formatNumber(headroom * 100)} % over ${formatNumber(sizing.sizedDemand)} replicas of demand: ${sizing.proposal} → ${raised}`,
    );
    sizing.proposal = raised;
  }
}
