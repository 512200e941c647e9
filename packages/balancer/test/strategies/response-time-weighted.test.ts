import assert from 'node:assert/strict';
import type { Balancer } from '@shoal/balancer';
import { countPicks, makeBalancer, makeInstances } from '../helpers.js';

describe('response_time_weighted', () => {
  let balancer: Balancer;
  afterEach(async () => balancer?.close());

  it('sends traffic in inverse proportion to observed latency once weights are recomputed', () => {
    const r = makeBalancer({ strategy: 'response_time_weighted' });
    balancer = r.balancer;
    balancer.setEndpoints(makeInstances(3));
    const latency = (id: string) => (id === 'e0' ? 40 : id === 'e1' ? 20 : 10);
    // Before any measurement: equal weights.
    const first = countPicks(balancer, 3000, latency);
    for (const c of first.values()) assert.ok(c > 800 && c < 1200);
    r.clock.advance(1000);
    const counts = countPicks(balancer, 70_000, latency);
    // Weights 1/40 : 1/20 : 1/10 = 1 : 2 : 4.
    const share = (id: string) => (counts.get(id) ?? 0) / 70_000;
    assert.ok(Math.abs(share('e0') - 1 / 7) < 0.01, String(share('e0')));
    assert.ok(Math.abs(share('e1') - 2 / 7) < 0.01, String(share('e1')));
    assert.ok(Math.abs(share('e2') - 4 / 7) < 0.01, String(share('e2')));
  });
});
