import assert from 'node:assert/strict';
import { InvalidArgumentError } from '@shoal/core';
import { PeakEwmaStrategy, UNMEASURED_PENALTY, createRandom, type Balancer, type Endpoint } from '@shoal/balancer';
import { countPicks, makeBalancer, makeInstances } from '../helpers.js';

function fakeEndpoint(fields: Partial<Endpoint>): Endpoint {
  return { inFlight: 0, samples: 1, ewmaMs: 10, ewmaStampMs: 0, ...fields } as Endpoint;
}

describe('peak_ewma', () => {
  let balancer: Balancer;
  afterEach(async () => balancer?.close());

  const env = { random: createRandom(3), clock: undefined as never, now: () => 0, ewmaDecayMs: 10_000 };

  it('costs latency × (in-flight + 1), decaying the estimate towards zero over decayMs', () => {
    const s = new PeakEwmaStrategy({}, env);
    assert.equal(s.cost(fakeEndpoint({ ewmaMs: 10, inFlight: 2 }), 0), 30);
    const decayed = s.cost(fakeEndpoint({ ewmaMs: 10, ewmaStampMs: 0 }), 10_000);
    assert.ok(Math.abs(decayed - 10 * Math.exp(-1)) < 1e-9, String(decayed));
  });

  it('probes an unmeasured endpoint once, then holds it back until the probe returns', () => {
    const s = new PeakEwmaStrategy({}, env);
    assert.equal(s.cost(fakeEndpoint({ samples: 0, inFlight: 0 }), 0), 0);
    assert.equal(s.cost(fakeEndpoint({ samples: 0, inFlight: 1 }), 0), UNMEASURED_PENALTY + 1);
    const seeded = new PeakEwmaStrategy({ initialRttMs: 30 }, env);
    assert.equal(seeded.cost(fakeEndpoint({ samples: 0, inFlight: 1 }), 0), 60);
  });

  it('sends most traffic to the faster endpoints (power of two choices)', () => {
    ({ balancer } = makeBalancer({ strategy: 'peak_ewma' }));
    balancer.setEndpoints(makeInstances(4));
    // e0 is 10× slower than the others.
    const counts = countPicks(balancer, 8000, (id) => (id === 'e0' ? 50 : 5));
    const slow = counts.get('e0') ?? 0;
    assert.ok(slow < 8000 * 0.1, `slow endpoint got ${slow} of 8000 picks`);
    for (const id of ['e1', 'e2', 'e3']) assert.ok((counts.get(id) ?? 0) > 2000, `${id}: ${counts.get(id)}`);
  });

  it('favours endpoints with fewer calls in flight when latencies are equal', () => {
    ({ balancer } = makeBalancer({ strategy: 'peak_ewma' }));
    balancer.setEndpoints(makeInstances(2));
    countPicks(balancer, 10, () => 10);
    const held = Array.from({ length: 5 }, () => balancer.pick());
    const busy = new Map<string, number>();
    for (const h of held) busy.set(h.instance.id, (busy.get(h.instance.id) ?? 0) + 1);
    // With two endpoints P2C compares both every time, so in-flight stays within one of each other.
    assert.ok(Math.abs((busy.get('e0') ?? 0) - (busy.get('e1') ?? 0)) <= 1, JSON.stringify([...busy]));
    for (const h of held) h.complete('success', 10);
  });

  it('reacts to a latency peak at once and forgets it over the decay time', () => {
    let now = 0;
    const localEnv = { ...env, now: () => now };
    const s = new PeakEwmaStrategy({ decayMs: 1000 }, localEnv);
    const ep = fakeEndpoint({ ewmaMs: 500, ewmaStampMs: 0 });
    assert.equal(s.cost(ep, now), 500);
    now = 5000;
    assert.ok(s.cost(ep, now) < 500 * 0.01);
  });

  it('rejects bad options, naming them', () => {
    assert.throws(() => new PeakEwmaStrategy({ choiceCount: 1 }, env), /strategyOptions\.choiceCount/);
    assert.throws(() => new PeakEwmaStrategy({ decayMs: NaN }, env), /strategyOptions\.decayMs must be .* got NaN/);
    assert.throws(() => new PeakEwmaStrategy({ decayMs: -5 }, env), InvalidArgumentError);
    assert.throws(() => new PeakEwmaStrategy({ nope: 1 }, env), /unknown option "nope"/);
  });

  it('lets strategyOptions.decayMs set the balancer EWMA decay', () => {
    ({ balancer } = makeBalancer({ strategy: 'peak_ewma', strategyOptions: { decayMs: 2000 } }));
    balancer.setEndpoints(makeInstances(1));
    balancer.pick().complete('success', 100);
    assert.equal(balancer.endpoints()[0]!.ewmaMs, 100);
  });
});
