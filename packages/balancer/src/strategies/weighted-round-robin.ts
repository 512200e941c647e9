import { InvalidArgumentError, describeValue } from '@shoal/core';
import { EdfScheduler } from '../edf-scheduler.js';
import type { Endpoint } from '../endpoint.js';
import { numberOption, optionObject } from '../options-util.js';
import type { Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

export type WrrScheduler = 'auto' | 'smooth' | 'edf';

/**
 * `weighted_round_robin` by `Instance.weight`, with two schedulers:
 *
 * - `smooth` (nginx's smooth weighted round-robin): every pick adds each weight to its endpoint's current weight,
 *   takes the largest and subtracts the total from it. Weights 5,1,1 give a a b a c a a: the heavy endpoint's
 *   turns are spread out, not bunched. O(n) per pick.
 * - `edf` (gRPC A58, Envoy): earliest-deadline-first over a binary heap, period 1/weight. O(log n) per pick.
 *
 * `scheduler: 'auto'` (default) uses smooth up to `smoothMaxEndpoints` (default 32) and EDF above. The weight is
 * `Instance.weight` × `slowStartFactor`.
 */
export class WeightedRoundRobinStrategy implements Strategy {
  readonly name = 'weighted_round_robin';
  private readonly scheduler: WrrScheduler;
  private readonly smoothMax: number;
  private endpoints: readonly Endpoint[] = [];
  private useSmooth = true;
  private current: Float64Array = new Float64Array(0);
  private weights: Float64Array = new Float64Array(0);
  private total = 0;
  private readonly edf = new EdfScheduler();

  constructor(options: StrategyOptions, _env: StrategyEnv) {
    const o = optionObject('strategyOptions', options, ['scheduler', 'smoothMaxEndpoints']);
    const scheduler = o.scheduler ?? 'auto';
    if (scheduler !== 'auto' && scheduler !== 'smooth' && scheduler !== 'edf') {
      throw new InvalidArgumentError(
        `strategyOptions.scheduler must be one of "auto", "smooth", "edf", got ${describeValue(scheduler)}`,
      );
    }
    this.scheduler = scheduler;
    this.smoothMax = numberOption('strategyOptions.smoothMaxEndpoints', o.smoothMaxEndpoints, 32, 1, 1e6, {
      integer: true,
    });
  }

  update(ready: readonly Endpoint[]): void {
    const n = ready.length;
    this.endpoints = ready;
    this.useSmooth = this.scheduler === 'smooth' || (this.scheduler === 'auto' && n <= this.smoothMax);
    this.weights = new Float64Array(n);
    this.total = 0;
    for (let i = 0; i < n; i++) {
      const w = ready[i]!.weight * ready[i]!.slowStartFactor;
      this.weights[i] = w;
      this.total += w;
    }
    if (this.useSmooth) this.current = new Float64Array(n);
    else this.edf.build(this.weights);
  }

  pick(): Endpoint | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    if (n === 0) return undefined;
    if (!this.useSmooth) return eps[this.edf.next()];
    const current = this.current;
    const weights = this.weights;
    let best = 0;
    let bestValue = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const v = current[i]! + weights[i]!;
      current[i] = v;
      if (v > bestValue) {
        bestValue = v;
        best = i;
      }
    }
    current[best] = bestValue - this.total;
    return eps[best];
  }
}
