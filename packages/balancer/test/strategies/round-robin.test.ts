import assert from 'node:assert/strict';
import type { Balancer } from '@shoal/balancer';
import { countPicks, makeBalancer, makeInstances } from '../helpers.js';

describe('round_robin', () => {
  let balancer: Balancer;
  afterEach(async () => balancer?.close());

  it('visits every endpoint once per round, in a fixed cyclic order', () => {
    ({ balancer } = makeBalancer({ strategy: 'round_robin' }));
    balancer.setEndpoints(makeInstances(5));
    const first = Array.from({ length: 5 }, () => balancer.pick().instance.id);
    assert.equal(new Set(first).size, 5);
    const second = Array.from({ length: 5 }, () => balancer.pick().instance.id);
    assert.deepEqual(second, first);
  });

  it('spreads picks exactly evenly and ignores weights and latency', () => {
    ({ balancer } = makeBalancer({ strategy: 'round_robin' }));
    balancer.setEndpoints(makeInstances(10, { weight: (i) => i + 1 }));
    const counts = countPicks(balancer, 10_000, (id) => (id === 'e3' ? 500 : 1));
    for (const c of counts.values()) assert.equal(c, 1000);
  });

  it('keeps going after the set shrinks under its cursor', () => {
    ({ balancer } = makeBalancer({ strategy: 'round_robin' }));
    balancer.setEndpoints(makeInstances(10));
    for (let i = 0; i < 9; i++) balancer.pick().complete('success', 1);
    balancer.setEndpoints(makeInstances(2));
    const ids = new Set(Array.from({ length: 4 }, () => balancer.pick().instance.id));
    assert.deepEqual([...ids].sort(), ['e0', 'e1']);
  });
});
