import type { Endpoint } from '../endpoint.js';
import { optionObject } from '../options-util.js';
import type { Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

/**
 * `round_robin`: each endpoint in turn, ignoring weights and load. The start position is randomised on every
 * update (as grpc-js does) so many clients do not march in step. O(1).
 */
export class RoundRobinStrategy implements Strategy {
  readonly name = 'round_robin';
  private endpoints: readonly Endpoint[] = [];
  private next = 0;

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    optionObject('strategyOptions', options, []);
  }

  update(ready: readonly Endpoint[]): void {
    this.endpoints = ready;
    this.next = ready.length === 0 ? 0 : Math.floor(this.env.random() * ready.length);
  }

  pick(): Endpoint | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    if (n === 0) return undefined;
    let i = this.next;
    if (i >= n) i = 0;
    this.next = i + 1;
    return eps[i];
  }
}
