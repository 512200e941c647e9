import { InvalidArgumentError, describeValue } from '@shoal/core';
import { AliasTable } from '../alias-table.js';
import type { Endpoint } from '../endpoint.js';
import { optionObject } from '../options-util.js';
import type { Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

/**
 * `random`: a uniformly random endpoint, or weighted by `Instance.weight` when weights differ (an alias table:
 * still O(1), one random number per pick). Option `weighted` (default true): false ignores weights. Slow start
 * multiplies the weight by `slowStartFactor` (also when `weighted` is false).
 */
export class RandomStrategy implements Strategy {
  readonly name = 'random';
  private readonly weighted: boolean;
  private endpoints: readonly Endpoint[] = [];
  private useTable = false;
  private readonly table = new AliasTable();

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    const o = optionObject('strategyOptions', options, ['weighted']);
    if (o.weighted !== undefined && typeof o.weighted !== 'boolean') {
      throw new InvalidArgumentError(`strategyOptions.weighted must be a boolean, got ${describeValue(o.weighted)}`);
    }
    this.weighted = o.weighted !== false;
  }

  update(ready: readonly Endpoint[]): void {
    this.endpoints = ready;
    const weightOf = (e: Endpoint) => (this.weighted ? e.weight : 1) * e.slowStartFactor;
    this.useTable = ready.some((e) => weightOf(e) !== weightOf(ready[0]!));
    if (this.useTable) this.table.build(ready.map(weightOf));
  }

  pick(): Endpoint | undefined {
    const eps = this.endpoints;
    if (this.useTable) return eps[this.table.draw(this.env.random())];
    return eps[Math.floor(this.env.random() * eps.length)];
  }
}
