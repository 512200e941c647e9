import assert from 'node:assert/strict';
import type { Balancer, PickHandle } from '@shoal/balancer';
import { countPicks, makeBalancer, makeInstances } from '../helpers.js';

const zones = (i: number) => (i < 3 ? 'eu-1a' : 'eu-1b');

describe('zone_aware', () => {
  let balancer: Balancer;
  afterEach(async () => balancer?.close());

  it('keeps traffic in the local zone while it is healthy', () => {
    ({ balancer } = makeBalancer({ strategy: 'round_robin', localZone: 'eu-1a' }));
    balancer.setEndpoints(makeInstances(6, { zone: zones }));
    assert.equal(balancer.strategyName, 'zone_aware(round_robin)');
    const counts = countPicks(balancer, 600);
    assert.deepEqual([...counts.keys()].sort(), ['e0', 'e1', 'e2']);
    for (const c of counts.values()) assert.equal(c, 200);
  });

  it("passes the wrapped strategy's EWMA settings (peak_ewma's decayMs and sampleWindow) to the balancer", () => {
    const estimate = (strategyOptions: Record<string, unknown>): number => {
      const made = makeBalancer({ strategy: 'peak_ewma', strategyOptions, localZone: 'eu-1a', slowStart: false });
      balancer = made.balancer;
      balancer.setEndpoints(makeInstances(1, { zone: zones }));
      balancer.pick().complete('success', 40);
      for (let i = 0; i < 50; i++) {
        made.clock.advance(1);
        balancer.pick().complete('success', 1);
      }
      const ewma = balancer.endpoints()[0]!.ewmaMs!;
      void balancer.close();
      return ewma;
    };
    assert.ok(estimate({ sampleWindow: 5 }) < 1.01); // 1 + 39 × 0.8^50
    assert.ok(estimate({ sampleWindow: 0 }) > 35); // 1 + 39 × e^(-50/10000)
    assert.ok(estimate({ sampleWindow: 0, decayMs: 10 }) < 1.01); // 1 + 39 × e^(-50/10)
  });

  it('spills over to every zone when too few local endpoints are healthy', () => {
    ({ balancer } = makeBalancer({
      strategy: 'round_robin',
      localZone: 'eu-1a',
      outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 50 },
    }));
    balancer.setEndpoints(makeInstances(6, { zone: zones }));
    // e0 fails once: ejected, local zone at 2/3 < 70 % healthy.
    countPicks(
      balancer,
      3,
      () => 1,
      (id) => (id === 'e0' ? 'failure' : 'success'),
    );
    const counts = countPicks(balancer, 500);
    assert.equal(counts.get('e0'), undefined);
    for (const id of ['e1', 'e2', 'e3', 'e4', 'e5']) assert.equal(counts.get(id), 100, id);
  });

  it('spills over when the local zone is overloaded compared with the others', () => {
    ({ balancer } = makeBalancer({
      strategy: 'least_request',
      localZone: 'eu-1a',
      zoneAware: { spilloverLoadFactor: 2 },
    }));
    balancer.setEndpoints(makeInstances(6, { zone: zones }));
    const held: PickHandle[] = [];
    for (let i = 0; i < 60; i++) held.push(balancer.pick());
    const remote = held.filter((h) => h.instance.zone === 'eu-1b').length;
    // Local first, until its mean in-flight passes 2 × (remote mean + 1); then both zones share.
    assert.ok(remote > 10 && remote < 40, `remote got ${remote} of 60`);
    for (const h of held) h.complete('success', 1);
  });

  it('uses every zone when the local zone has no endpoints, and needs a strategy it can instantiate twice', () => {
    ({ balancer } = makeBalancer({ strategy: 'round_robin', localZone: 'us-1a' }));
    balancer.setEndpoints(makeInstances(6, { zone: zones }));
    assert.equal(countPicks(balancer, 60).size, 6);
    const object = { name: 'x', update() {}, pick: () => undefined };
    assert.throws(
      () => makeBalancer({ strategy: object, localZone: 'a' }),
      /localZone needs the strategy given by name/,
    );
  });
});
