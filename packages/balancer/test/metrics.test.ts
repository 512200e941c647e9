import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { Balancer } from '@shoal/balancer';
import { makeBalancer, makeInstances } from './helpers.js';

describe('balancer metrics', () => {
  it('counts expired handles and keeps picks of a closed balancer', async () => {
    const registry = new Registry();
    const { balancer, clock } = makeBalancer({ registry, name: 'orders', handleTimeoutMs: 1000 });
    balancer.setEndpoints(makeInstances(2));
    for (let i = 0; i < 3; i++) balancer.pick();
    clock.advance(2000);
    await balancer.close();
    const text = await registry.metrics();
    assert.match(text, /shoal_balancer_handles_expired_total\{balancer="orders"\} 3/);
    assert.match(text, /shoal_balancer_picks_total\{balancer="orders",strategy="peak_ewma"\} 3/);
    // A closed balancer no longer reports endpoints.
    assert.doesNotMatch(text, /shoal_balancer_endpoints\{balancer="orders"/);
  });

  it('lets balancers share a registry, each under its own label', async () => {
    const registry = new Registry();
    const a = new Balancer({ registry, name: 'a', strategy: 'round_robin' });
    const b = new Balancer({ registry, name: 'b', strategy: 'random' });
    a.setEndpoints(makeInstances(1));
    b.setEndpoints(makeInstances(2));
    a.pick().complete('success', 1);
    const text = await registry.metrics();
    assert.match(text, /shoal_balancer_picks_total\{balancer="a",strategy="round_robin"\} 1/);
    assert.match(text, /shoal_balancer_endpoints\{balancer="b",state="ready"\} 2/);
    await Promise.all([a.close(), b.close()]);
  });

  it('uses a private registry when none is given (never the global one)', async () => {
    const { register } = await import('prom-client');
    const { balancer } = makeBalancer();
    balancer.setEndpoints(makeInstances(1));
    balancer.pick();
    assert.equal(register.getSingleMetric('shoal_balancer_picks_total'), undefined);
    await balancer.close();
  });
});
