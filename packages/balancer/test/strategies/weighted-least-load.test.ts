import assert from 'node:assert/strict';
import type { Balancer } from '@shoal/balancer';
import { countPicks, makeBalancer, makeInstances } from '../helpers.js';

describe('weighted_least_load', () => {
  let balancer: Balancer;
  afterEach(async () => balancer?.close());

  it('weights endpoints by rps / (utilization + eps/rps × penalty) after the blackout period', () => {
    const r = makeBalancer({ strategy: 'weighted_least_load', strategyOptions: { blackoutPeriodMs: 5000 } });
    balancer = r.balancer;
    balancer.setEndpoints(makeInstances(3));
    const report = () => {
      balancer.reportLoad('e0', { utilization: 0.8, rps: 100 }); // 125
      balancer.reportLoad('e1', { utilization: 0.4, rps: 100 }); // 250
      balancer.reportLoad('e2', { cpu: 0.4, rps: 100, eps: 40 }); // 100 / (0.4 + 0.4) = 125
    };
    report();
    // Inside the blackout: plain round robin.
    let counts = countPicks(balancer, 3000);
    for (const c of counts.values()) assert.equal(c, 1000);
    for (let t = 0; t < 6; t++) {
      r.clock.advance(1000);
      report();
    }
    counts = countPicks(balancer, 5000);
    assert.ok(Math.abs((counts.get('e1') ?? 0) - 2500) <= 2, JSON.stringify([...counts]));
    assert.ok(Math.abs((counts.get('e0') ?? 0) - 1250) <= 2);
    assert.ok(Math.abs((counts.get('e2') ?? 0) - 1250) <= 2);
  });

  it('gives endpoints without a usable report the mean weight, and expires stale reports', () => {
    const r = makeBalancer({
      strategy: 'weighted_least_load',
      strategyOptions: { blackoutPeriodMs: 0, weightExpirationPeriodMs: 10_000 },
    });
    balancer = r.balancer;
    balancer.setEndpoints(makeInstances(3));
    balancer.reportLoad('e0', { utilization: 0.5, rps: 100 }); // 200
    balancer.reportLoad('e1', { utilization: 1, rps: 100 }); // 100; e2 gets the mean, 150
    r.clock.advance(1000);
    let counts = countPicks(balancer, 4500);
    assert.ok(Math.abs((counts.get('e0') ?? 0) - 2000) <= 2, JSON.stringify([...counts]));
    assert.ok(Math.abs((counts.get('e2') ?? 0) - 1500) <= 2);
    r.clock.advance(10_000);
    counts = countPicks(balancer, 3000);
    for (const c of counts.values()) assert.equal(c, 1000);
  });

  it('rejects a negative error penalty', () => {
    assert.throws(
      () => makeBalancer({ strategy: 'weighted_least_load', strategyOptions: { errorUtilizationPenalty: -1 } }),
      /strategyOptions\.errorUtilizationPenalty .* got -1/,
    );
  });
});
