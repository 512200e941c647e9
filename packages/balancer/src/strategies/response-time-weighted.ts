import { AliasTable } from '../alias-table.js';
import type { Endpoint } from '../endpoint.js';
import { optionObject } from '../options-util.js';
import type { Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

/**
 * `response_time_weighted` (after Ribbon's WeightedResponseTimeRule): random picks weighted by
 * `Instance.weight` × `slowStartFactor` / EWMA latency, so an endpoint twice as fast gets twice the traffic. Weights are recomputed
 * on every balancer tick (default each second) from the decayed EWMA; endpoints without a measurement get the mean
 * weight. O(1) per pick (alias table). Reacts more slowly than peak_ewma, but spreads load more evenly.
 */
export class ResponseTimeWeightedStrategy implements Strategy {
  readonly name = 'response_time_weighted';
  private endpoints: readonly Endpoint[] = [];
  private readonly table = new AliasTable();
  private weights: Float64Array = new Float64Array(0);

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    optionObject('strategyOptions', options, []);
  }

  update(ready: readonly Endpoint[]): void {
    this.endpoints = ready;
    this.weights = new Float64Array(ready.length);
    this.recompute(this.env.now());
  }

  tick(nowMs: number): void {
    this.recompute(nowMs);
  }

  private recompute(nowMs: number): void {
    const eps = this.endpoints;
    const w = this.weights;
    const decay = this.env.ewmaDecayMs;
    let sum = 0;
    let measured = 0;
    for (let i = 0; i < eps.length; i++) {
      const ep = eps[i]!;
      if (ep.samples === 0) {
        w[i] = -1;
        continue;
      }
      const dt = nowMs - ep.ewmaStampMs;
      // Floor at 0.01 ms so an instant endpoint does not take everything.
      const latency = Math.max(0.01, ep.ewmaMs * (dt > 0 ? Math.exp(-dt / decay) : 1));
      w[i] = (ep.weight * ep.slowStartFactor) / latency;
      sum += w[i]!;
      measured++;
    }
    const mean = measured > 0 ? sum / measured : 1;
    for (let i = 0; i < eps.length; i++) if (w[i]! < 0) w[i] = mean * eps[i]!.weight * eps[i]!.slowStartFactor;
    this.table.build(w);
  }

  pick(): Endpoint | undefined {
    return this.endpoints[this.table.draw(this.env.random())];
  }
}
