import { EdfScheduler } from '../edf-scheduler.js';
import type { Endpoint } from '../endpoint.js';
import { numberOption, optionObject } from '../options-util.js';
import type { Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

/**
 * `weighted_least_load`: gRPC A58 client-side weighted round robin over server-reported load
 * (`Balancer.reportLoad()` or `PickHandle.complete(..., load)`):
 *
 *   weight = rps / (utilization + (eps / rps) × errorUtilizationPenalty)
 *
 * where utilization is the reported `utilization`, else `cpu`. A weight is used only after the endpoint has
 * reported non-empty load for `blackoutPeriodMs` (10 s) and while its last report is younger than
 * `weightExpirationPeriodMs` (3 min); endpoints without a usable weight get the mean weight, and with fewer than
 * two usable weights every endpoint is equal (plain round robin). Weights are recomputed every
 * `weightUpdatePeriodMs` (1 s, min 100 ms; on the balancer's tick) and scheduled EDF (O(log n) per pick) with
 * random initial deadlines, as A58 specifies. Slow start multiplies each weight by `slowStartFactor`.
 */
export class WeightedLeastLoadStrategy implements Strategy {
  readonly name = 'weighted_least_load';
  private readonly blackoutPeriodMs: number;
  private readonly weightExpirationPeriodMs: number;
  private readonly weightUpdatePeriodMs: number;
  private readonly errorUtilizationPenalty: number;
  private endpoints: readonly Endpoint[] = [];
  private readonly edf = new EdfScheduler();
  private weights: Float64Array = new Float64Array(0);
  private lastUpdateMs = Number.NEGATIVE_INFINITY;

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    const o = optionObject('strategyOptions', options, [
      'blackoutPeriodMs',
      'weightExpirationPeriodMs',
      'weightUpdatePeriodMs',
      'errorUtilizationPenalty',
    ]);
    this.blackoutPeriodMs = numberOption('strategyOptions.blackoutPeriodMs', o.blackoutPeriodMs, 10_000, 0, 86_400_000);
    this.weightExpirationPeriodMs = numberOption(
      'strategyOptions.weightExpirationPeriodMs',
      o.weightExpirationPeriodMs,
      180_000,
      0,
      86_400_000,
      { exclusiveMin: true },
    );
    this.weightUpdatePeriodMs = numberOption(
      'strategyOptions.weightUpdatePeriodMs',
      o.weightUpdatePeriodMs,
      1000,
      100,
      86_400_000,
    );
    this.errorUtilizationPenalty = numberOption(
      'strategyOptions.errorUtilizationPenalty',
      o.errorUtilizationPenalty,
      1,
      0,
      1e6,
    );
  }

  /** The weight A58 gives `ep` now (0 = no usable load report). */
  weightOf(ep: Endpoint, nowMs: number): number {
    const util = Number.isNaN(ep.utilization) ? ep.cpu : ep.utilization;
    const rps = ep.rps;
    if (!(rps > 0) || !(util > 0)) return 0;
    if (!(nowMs - ep.loadUpdatedMs <= this.weightExpirationPeriodMs)) return 0;
    if (!(nowMs - ep.loadNonEmptySinceMs >= this.blackoutPeriodMs)) return 0;
    const eps = Number.isNaN(ep.eps) ? 0 : ep.eps;
    return rps / (util + (eps / rps) * this.errorUtilizationPenalty);
  }

  update(ready: readonly Endpoint[]): void {
    this.endpoints = ready;
    this.weights = new Float64Array(ready.length);
    this.recompute(this.env.now());
  }

  tick(nowMs: number): void {
    if (nowMs - this.lastUpdateMs >= this.weightUpdatePeriodMs) this.recompute(nowMs);
  }

  private recompute(nowMs: number): void {
    this.lastUpdateMs = nowMs;
    const eps = this.endpoints;
    const w = this.weights;
    let sum = 0;
    let usable = 0;
    for (let i = 0; i < eps.length; i++) {
      w[i] = this.weightOf(eps[i]!, nowMs);
      if (w[i]! > 0) {
        sum += w[i]!;
        usable++;
      }
    }
    if (usable < 2) w.fill(1);
    else {
      const mean = sum / usable;
      for (let i = 0; i < w.length; i++) if (w[i] === 0) w[i] = mean;
    }
    for (let i = 0; i < w.length; i++) w[i] = w[i]! * eps[i]!.slowStartFactor;
    const random = this.env.random;
    this.edf.build(w, () => random());
  }

  pick(): Endpoint | undefined {
    return this.endpoints[this.edf.next()];
  }
}
