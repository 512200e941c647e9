import { CandidateSampler } from '../candidate-sampler.js';
import type { Endpoint } from '../endpoint.js';
import { numberOption, optionObject } from '../options-util.js';
import type { Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

/** Finagle's penalty for an endpoint with no latency history and a call in flight (`Long.MaxValue >> 16`). */
export const UNMEASURED_PENALTY = 2 ** 47;

/**
 * `peak_ewma` (Finagle `p2cPeakEwma`, Linkerd's default): power of `choiceCount` random choices, lowest cost wins,
 * cost = peak-sensitive EWMA latency (decayed to now) × (in-flight + 1).
 *
 * An endpoint with no latency history costs 0 while idle, so it gets one probe, then `UNMEASURED_PENALTY` +
 * in-flight until that probe returns: tried, never flooded. With `initialRttMs` it is seeded instead (Linkerd:
 * 30 ms). Slow start is a weight on the draw of candidates (see `least_request`). O(choiceCount) per pick, no
 * allocation.
 *
 * Options: `choiceCount` (2..10, default 2), `decayMs` (EWMA decay time, default the balancer's `ewmaDecayMs`,
 * 10 s), `initialRttMs` (seed latency for unmeasured endpoints; default none = Finagle probe penalty),
 * `sampleWindow` (default 20; 0 = Finagle's time-only decay): each faster call weighs at least 1/`sampleWindow`
 * in the estimate. Without it a single peak is remembered for ~`decayMs` however many fast calls follow, so at
 * hundreds of calls per second the caller's own pauses (GC, a busy CPU), which delay the calls to every endpoint
 * at once, keep every endpoint's estimate near the worst pause of the last `decayMs` and hide a truly slower one.
 * An endpoint that is slow on a share of its calls keeps its peak, since the peaks recur within the window.
 */
export const DEFAULT_SAMPLE_WINDOW = 20;

export class PeakEwmaStrategy implements Strategy {
  readonly name = 'peak_ewma';
  readonly ewmaDecayMs: number;
  readonly ewmaSampleWindow: number;
  private readonly choiceCount: number;
  private readonly initialRttMs: number;
  private endpoints: readonly Endpoint[] = [];
  private readonly sampler = new CandidateSampler();

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    const o = optionObject('strategyOptions', options, ['choiceCount', 'decayMs', 'initialRttMs', 'sampleWindow']);
    this.choiceCount = numberOption('strategyOptions.choiceCount', o.choiceCount, 2, 2, 10, { integer: true });
    this.ewmaDecayMs = numberOption('strategyOptions.decayMs', o.decayMs, env.ewmaDecayMs, 0, 86_400_000, {
      exclusiveMin: true,
    });
    this.initialRttMs = numberOption('strategyOptions.initialRttMs', o.initialRttMs, 0, 0, 3_600_000);
    this.ewmaSampleWindow = numberOption(
      'strategyOptions.sampleWindow',
      o.sampleWindow,
      DEFAULT_SAMPLE_WINDOW,
      0,
      1_000_000,
      { integer: true },
    );
  }

  update(ready: readonly Endpoint[]): void {
    this.endpoints = ready;
    this.sampler.update(ready);
  }

  /** The load estimate the pick compares. */
  cost(ep: Endpoint, nowMs: number): number {
    const pending = ep.inFlight;
    if (ep.samples === 0) {
      if (this.initialRttMs > 0) return this.initialRttMs * (pending + 1);
      return pending === 0 ? 0 : UNMEASURED_PENALTY + pending;
    }
    let ewma = ep.ewmaMs;
    const dt = nowMs - ep.ewmaStampMs;
    if (dt > 0) ewma *= Math.exp(-dt / this.ewmaDecayMs);
    return ewma * (pending + 1);
  }

  pick(): Endpoint | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    if (n <= 1) return eps[0];
    const random = this.env.random;
    const now = this.env.now();
    const sampler = this.sampler;
    const i = sampler.first(n, random);
    const j = sampler.other(i, n, random);
    let best = eps[i]!;
    let other = eps[j]!;
    if (this.choiceCount === 2 && best.samples !== 0 && other.samples !== 0) {
      // Both measured: compare ewma_a·(f_a+1)·e^(-(now-s_a)/τ) with the same for b using one exp, not two.
      const a = best.ewmaMs * (best.inFlight + 1);
      const b = other.ewmaMs * (other.inFlight + 1);
      return b * Math.exp((other.ewmaStampMs - best.ewmaStampMs) / this.ewmaDecayMs) < a ? other : best;
    }
    let bestCost = this.cost(best, now);
    let otherCost = this.cost(other, now);
    if (otherCost < bestCost) {
      best = other;
      bestCost = otherCost;
    }
    for (let c = 2; c < this.choiceCount; c++) {
      other = eps[sampler.any(n, random)]!;
      otherCost = this.cost(other, now);
      if (otherCost < bestCost) {
        best = other;
        bestCost = otherCost;
      }
    }
    return best;
  }
}
