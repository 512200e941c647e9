import assert from 'node:assert/strict';
import { InvalidArgumentError } from '@shoal/core';
import {
  Balancer,
  RoundRobinStrategy,
  getStrategyFactory,
  registerStrategy,
  strategyNames,
  type Endpoint,
  type Strategy,
  type StrategyEnv,
} from '@shoal/balancer';
import { makeInstances } from './helpers.js';

/** A user strategy: always the endpoint with the lowest port. */
class LowestPort implements Strategy {
  readonly name = 'lowest_port';
  private eps: readonly Endpoint[] = [];
  constructor(
    readonly options: Readonly<Record<string, unknown>>,
    readonly env: StrategyEnv,
  ) {}
  update(ready: readonly Endpoint[]): void {
    this.eps = [...ready].sort((a, b) => a.instance.port - b.instance.port);
  }
  pick(_ctx: unknown, attempt: number): Endpoint | undefined {
    return this.eps[attempt % Math.max(1, this.eps.length)];
  }
}

describe('strategy registry', () => {
  it('lists every built-in strategy', () => {
    assert.deepEqual(strategyNames().slice(0, 10).sort(), [
      'least_connections',
      'least_request',
      'maglev',
      'peak_ewma',
      'random',
      'response_time_weighted',
      'ring_hash',
      'round_robin',
      'weighted_least_load',
      'weighted_round_robin',
    ]);
    assert.equal(getStrategyFactory('round_robin'), RoundRobinStrategy);
    assert.equal(getStrategyFactory('nope'), undefined);
  });

  it('registers a user strategy by name (class or function) and passes it strategyOptions', async () => {
    registerStrategy('lowest_port', LowestPort);
    assert.ok(strategyNames().includes('lowest_port'));
    const b = new Balancer({ strategy: 'lowest_port', strategyOptions: { x: 1 } });
    b.setEndpoints(makeInstances(5).reverse());
    assert.equal(b.pick().instance.id, 'e0');
    // Exclusion re-picks with a higher attempt number.
    assert.equal(b.pick({ exclude: new Set(['e0']) }).instance.id, 'e1');
    await b.close();
    registerStrategy('lowest_port_fn', (options, env) => new LowestPort(options, env));
    const c = new Balancer({ strategy: 'lowest_port_fn' });
    assert.equal(c.strategyName, 'lowest_port');
    await c.close();
  });

  it('rejects bad names, built-in names and non-factories', () => {
    assert.throws(() => registerStrategy('Bad Name', LowestPort), /name must be a string matching/);
    assert.throws(() => registerStrategy('round_robin', LowestPort), /built-in strategy name, got "round_robin"/);
    assert.throws(() => registerStrategy('x', {} as never), InvalidArgumentError);
    assert.throws(
      () => new Balancer({ strategy: () => ({}) as never }),
      /strategy factory must return an object with pick\(\) and update\(\)/,
    );
  });
});
