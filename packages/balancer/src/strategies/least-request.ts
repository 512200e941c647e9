import { CandidateSampler } from '../candidate-sampler.js';
import type { Endpoint } from '../endpoint.js';
import { numberOption, optionObject } from '../options-util.js';
import type { Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

/**
 * `least_request` (Envoy least_request, Finagle's default `p2c`): sample `choiceCount` random endpoints (default
 * 2, at most 10 as gRPC A48), keep the one with the fewest calls in flight. With unequal `Instance.weight`s the
 * comparison is (in-flight + 1) / weight, so a heavier endpoint carries proportionally more. Slow start is a weight
 * on the draw: a warming endpoint is drawn as a candidate in proportion to its `slowStartFactor` (ties go to the
 * first candidate, so under equal load its share is its weighted share). O(choiceCount).
 */
export class LeastRequestStrategy implements Strategy {
  readonly name = 'least_request';
  private readonly choiceCount: number;
  private endpoints: readonly Endpoint[] = [];
  private readonly sampler = new CandidateSampler();

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    const o = optionObject('strategyOptions', options, ['choiceCount']);
    this.choiceCount = numberOption('strategyOptions.choiceCount', o.choiceCount, 2, 2, 10, { integer: true });
  }

  update(ready: readonly Endpoint[]): void {
    this.endpoints = ready;
    this.sampler.update(ready);
  }

  pick(): Endpoint | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    if (n <= 1) return eps[0];
    const random = this.env.random;
    const sampler = this.sampler;
    const i = sampler.first(n, random);
    const j = sampler.other(i, n, random);
    let best = eps[i]!;
    let bestCost = (best.inFlight + 1) / best.weight;
    let other = eps[j]!;
    let otherCost = (other.inFlight + 1) / other.weight;
    if (otherCost < bestCost) {
      best = other;
      bestCost = otherCost;
    }
    for (let c = 2; c < this.choiceCount; c++) {
      other = eps[sampler.any(n, random)]!;
      otherCost = (other.inFlight + 1) / other.weight;
      if (otherCost < bestCost) {
        best = other;
        bestCost = otherCost;
      }
    }
    return best;
  }
}
