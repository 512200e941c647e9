import assert from 'node:assert/strict';
import type { Balancer } from '@shoal/balancer';
import { countPicks, makeBalancer, makeInstances } from '../helpers.js';

/** Pearson chi-square statistic of observed counts against expected shares. */
function chiSquare(counts: Map<string, number>, expected: Map<string, number>): number {
  let x = 0;
  for (const [id, e] of expected) {
    const o = counts.get(id) ?? 0;
    x += ((o - e) * (o - e)) / e;
  }
  return x;
}

describe('random', () => {
  let balancer: Balancer;
  afterEach(async () => balancer?.close());

  it('is uniform: chi-square over 20 endpoints below the 0.999 quantile', () => {
    ({ balancer } = makeBalancer({ strategy: 'random' }));
    balancer.setEndpoints(makeInstances(20));
    const counts = countPicks(balancer, 40_000);
    const expected = new Map(Array.from({ length: 20 }, (_, i) => [`e${i}`, 2000]));
    // chi-square, 19 degrees of freedom, p = 0.999: 43.82
    assert.ok(chiSquare(counts, expected) < 43.82);
  });

  it('follows weights when they differ, unless weighted: false', () => {
    ({ balancer } = makeBalancer({ strategy: 'random' }));
    balancer.setEndpoints(makeInstances(4, { weight: (i) => i + 1 }));
    const counts = countPicks(balancer, 50_000);
    const expected = new Map(Array.from({ length: 4 }, (_, i) => [`e${i}`, (50_000 * (i + 1)) / 10]));
    assert.ok(chiSquare(counts, expected) < 16.27); // 3 d.o.f., p = 0.999
    const { balancer: flat } = makeBalancer({ strategy: 'random', strategyOptions: { weighted: false } });
    flat.setEndpoints(makeInstances(4, { weight: (i) => i + 1 }));
    const flatCounts = countPicks(flat, 40_000);
    assert.ok(chiSquare(flatCounts, new Map(Array.from({ length: 4 }, (_, i) => [`e${i}`, 10_000]))) < 16.27);
    void flat.close();
  });

  it('is reproducible with a seeded random source', () => {
    const seq = (seed: number) => {
      const { balancer: b } = makeBalancer({ strategy: 'random' }, seed);
      b.setEndpoints(makeInstances(10));
      const ids = Array.from({ length: 20 }, () => b.pick().instance.id).join();
      void b.close();
      return ids;
    };
    assert.equal(seq(5), seq(5));
    assert.notEqual(seq(5), seq(6));
  });
});
