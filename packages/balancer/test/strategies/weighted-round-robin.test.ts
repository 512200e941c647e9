import assert from 'node:assert/strict';
import type { Balancer } from '@shoal/balancer';
import { countPicks, makeBalancer, makeInstances } from '../helpers.js';

describe('weighted_round_robin', () => {
  let balancer: Balancer;
  afterEach(async () => balancer?.close());

  it('produces the smooth sequence a a b a c a a for weights 5, 1, 1 (nginx)', () => {
    ({ balancer } = makeBalancer({ strategy: 'weighted_round_robin' }));
    const [a, b, c] = makeInstances(3, { weight: (i) => (i === 0 ? 5 : 1) });
    balancer.setEndpoints([
      { ...a!, id: 'a' },
      { ...b!, id: 'b' },
      { ...c!, id: 'c' },
    ]);
    const seq = Array.from({ length: 14 }, () => {
      const h = balancer.pick();
      h.complete('success', 1);
      return h.instance.id;
    }).join(' ');
    assert.equal(seq, 'a a b a c a a a a b a c a a');
  });

  it('gives each endpoint exactly its weighted share per cycle', () => {
    ({ balancer } = makeBalancer({ strategy: 'weighted_round_robin' }));
    balancer.setEndpoints(makeInstances(5, { weight: (i) => i + 1 }));
    const counts = countPicks(balancer, 15 * 100);
    for (let i = 0; i < 5; i++) assert.equal(counts.get(`e${i}`), (i + 1) * 100);
  });

  it('uses an O(log n) EDF scheduler for large sets with the same proportions', () => {
    ({ balancer } = makeBalancer({ strategy: 'weighted_round_robin' }));
    balancer.setEndpoints(makeInstances(1000, { weight: (i) => (i % 4) + 1 }));
    const counts = countPicks(balancer, 250 * 1000);
    for (let i = 0; i < 1000; i++) {
      const expected = ((i % 4) + 1) * 100;
      const got = counts.get(`e${i}`) ?? 0;
      assert.ok(Math.abs(got - expected) <= 1, `e${i}: ${got} vs ${expected}`);
    }
  });

  it('can force either scheduler and rejects an unknown one', () => {
    ({ balancer } = makeBalancer({ strategy: 'weighted_round_robin', strategyOptions: { scheduler: 'edf' } }));
    balancer.setEndpoints(makeInstances(3, { weight: (i) => (i === 0 ? 5 : 1) }));
    const counts = countPicks(balancer, 700);
    assert.equal(counts.get('e0'), 500);
    assert.throws(
      () => makeBalancer({ strategy: 'weighted_round_robin', strategyOptions: { scheduler: 'fair' } }),
      /strategyOptions\.scheduler must be one of "auto", "smooth", "edf", got "fair"/,
    );
  });
});
