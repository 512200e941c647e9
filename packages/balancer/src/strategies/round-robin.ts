import { EdfScheduler } from '../edf-scheduler.js';
import type { Endpoint } from '../endpoint.js';
import { optionObject } from '../options-util.js';
import type { Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

/**
 * `round_robin`: each endpoint in turn, ignoring `Instance.weight` and load. The start position is randomised on
 * every update (as grpc-js does) so many clients do not march in step. O(1).
 *
 * While an endpoint warms up (slow start), the rotation becomes an EDF schedule over the `slowStartFactor`s
 * (O(log n), random initial deadlines): every full endpoint still takes its turn once per round, a warming one
 * once every 1/factor rounds.
 */
export class RoundRobinStrategy implements Strategy {
  readonly name = 'round_robin';
  private endpoints: readonly Endpoint[] = [];
  private next = 0;
  private weighted = false;
  private readonly edf = new EdfScheduler();

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    optionObject('strategyOptions', options, []);
  }

  update(ready: readonly Endpoint[]): void {
    this.endpoints = ready;
    this.next = ready.length === 0 ? 0 : Math.floor(this.env.random() * ready.length);
    this.weighted = ready.some((e) => e.slowStartFactor !== 1);
    if (this.weighted) {
      const random = this.env.random;
      this.edf.build(
        ready.map((e) => e.slowStartFactor),
        () => random(),
      );
    }
  }

  pick(): Endpoint | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    if (n === 0) return undefined;
    if (this.weighted) return eps[this.edf.next()];
    let i = this.next;
    if (i >= n) i = 0;
    this.next = i + 1;
    return eps[i];
  }
}
