import assert from 'node:assert/strict';
import type { Balancer } from '@shoal/balancer';
import { countPicks, makeBalancer, makeInstances } from './helpers.js';

describe('retry budget', () => {
  let balancer: Balancer;
  afterEach(async () => balancer?.close());

  it('always allows the floor (minRetriesPerSecond × ttl) even without traffic', () => {
    ({ balancer } = makeBalancer({ retryBudget: { ratio: 0.2, minRetriesPerSecond: 2, ttlMs: 5000 } }));
    let n = 0;
    while (balancer.tryRetry()) n++;
    assert.equal(n, 10);
  });

  it('grows with traffic at the configured ratio and forgets it after ttl', () => {
    const r = makeBalancer({ retryBudget: { ratio: 0.5, minRetriesPerSecond: 0, ttlMs: 3000 } });
    balancer = r.balancer;
    balancer.setEndpoints(makeInstances(1));
    countPicks(balancer, 10);
    r.clock.advance(1000);
    countPicks(balancer, 10);
    let n = 0;
    while (balancer.tryRetry()) n++;
    assert.equal(n, 10);
    // The first 10 requests leave the window; the 10 retries (same bucket as the second 10) still count.
    r.clock.advance(2000);
    assert.equal(balancer.tryRetry(), false);
    // Another second: the window is empty, and fresh traffic earns fresh retries.
    r.clock.advance(1000);
    countPicks(balancer, 4);
    n = 0;
    while (balancer.tryRetry()) n++;
    assert.equal(n, 2);
  });
});
