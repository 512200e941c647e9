import assert from 'node:assert/strict';
import { createRandom, type Balancer, type PickHandle } from '@shoal/balancer';
import { makeBalancer, makeInstances } from '../helpers.js';

describe('least_connections', () => {
  let balancer: Balancer;
  afterEach(async () => balancer?.close());

  it('picks the endpoint with the fewest calls in flight', () => {
    ({ balancer } = makeBalancer({ strategy: 'least_connections' }));
    balancer.setEndpoints(makeInstances(3));
    const held: PickHandle[] = [];
    for (let i = 0; i < 9; i++) held.push(balancer.pick());
    assert.deepEqual(
      balancer.endpoints().map((e) => e.inFlight),
      [3, 3, 3],
    );
    // Free two calls on e1: the next two picks go there.
    held
      .filter((h) => h.instance.id === 'e1')
      .slice(0, 2)
      .forEach((h) => h.complete('success', 1));
    assert.equal(balancer.pick().instance.id, 'e1');
    assert.equal(balancer.pick().instance.id, 'e1');
    for (const h of held) h.complete('success', 1);
  });

  it('rotates among endpoints tied on in-flight', () => {
    ({ balancer } = makeBalancer({ strategy: 'least_connections' }));
    balancer.setEndpoints(makeInstances(4));
    const seq = Array.from({ length: 12 }, () => {
      const h = balancer.pick();
      h.complete('success', 1);
      return h.instance.id;
    });
    // Every endpoint once per round of four, in the same order each round.
    for (let r = 0; r < 3; r++) assert.equal(new Set(seq.slice(r * 4, r * 4 + 4)).size, 4);
    assert.deepEqual(seq.slice(4, 8), seq.slice(0, 4));
  });

  it('stays correct after handles are swept', () => {
    const r = makeBalancer({ strategy: 'least_connections', handleTimeoutMs: 1000 });
    balancer = r.balancer;
    balancer.setEndpoints(makeInstances(2));
    for (let i = 0; i < 10; i++) balancer.pick();
    r.clock.advance(3000);
    assert.deepEqual(
      balancer.endpoints().map((e) => e.inFlight),
      [0, 0],
    );
    const a = balancer.pick();
    const b = balancer.pick();
    assert.notEqual(a.instance.id, b.instance.id);
  });

  it('always picks a minimum under random interleavings of picks and completions', () => {
    ({ balancer } = makeBalancer({ strategy: 'least_connections', slowStart: false }));
    balancer.setEndpoints(makeInstances(17));
    const rnd = createRandom(99);
    const open: PickHandle[] = [];
    for (let step = 0; step < 20_000; step++) {
      if (open.length > 0 && rnd() < 0.48) {
        open.splice(Math.floor(rnd() * open.length), 1)[0]!.complete('success', 1);
        continue;
      }
      const min = Math.min(...balancer.endpoints().map((e) => e.inFlight));
      const h = balancer.pick();
      const got = balancer.endpoints().find((e) => e.instance.id === h.instance.id)!.inFlight - 1;
      assert.equal(got, min, `step ${step}`);
      open.push(h);
    }
    for (const h of open) h.complete('success', 1);
  });
});
