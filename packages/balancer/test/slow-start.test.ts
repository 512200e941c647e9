import assert from 'node:assert/strict';
import { strategyNames, type Balancer, type PickHandle } from '@shoal/balancer';
import { makeBalancer, makeInstances } from './helpers.js';

/** Strategies that opt out of slow start (it would move keys); their factor stays 1. */
const HASHING = new Set(['ring_hash', 'maglev']);
const WINDOW_MS = 100_000;

/**
 * A balancer whose last of `n` endpoints joined `f × WINDOW_MS` ago, so that its slow-start factor is exactly `f`
 * (Envoy's linear ramp, `minWeightPercent` below `f`). The clock then stands still, so the factor stays `f`.
 */
function warming(strategy: string, n: number, f: number, localZone?: string): Balancer {
  const { balancer, clock } = makeBalancer(
    {
      strategy,
      slowStart: { windowMs: WINDOW_MS, minWeightPercent: 1 },
      outlierDetection: false,
      ...(localZone !== undefined ? { localZone } : {}),
    },
    n * 100 + Math.round(f * 100),
  );
  const zone = () => 'a';
  balancer.setEndpoints(makeInstances(n - 1, { zone }));
  balancer.setEndpoints(makeInstances(n, { zone }));
  clock.advance(f * WINDOW_MS);
  return balancer;
}

/** The new endpoint's share of `picks` picks, each completed at once with the same latency (equal load). */
function newShare(balancer: Balancer, id: string, picks: number): number {
  let hits = 0;
  for (let i = 0; i < picks; i++) {
    const h: PickHandle = balancer.pick({ key: `k${i}` });
    if (h.instance.id === id) hits++;
    h.complete('success', 5);
  }
  return hits / picks;
}

describe('slow start as a weight', () => {
  const cases: Array<[n: number, f: number]> = [
    [10, 0.1],
    [10, 0.5],
    [3, 0.25],
    [2, 0.1],
  ];
  const PICKS = 40_000;

  for (const strategy of strategyNames()) {
    it(`${strategy}: an endpoint at factor f gets f × a full share under equal load`, async () => {
      const rows: string[] = [];
      for (const [n, f] of cases) {
        const balancer = warming(strategy, n, f);
        const id = `e${n - 1}`;
        const factor = balancer.endpoints().find((e) => e.instance.id === id)!.slowStartFactor;
        const share = newShare(balancer, id, PICKS);
        await balancer.close();
        const applies = !HASHING.has(strategy);
        assert.equal(factor, applies ? f : 1, `${strategy} n=${n}: factor`);
        // Weighted share: the others weigh 1 each, the new one f (hashing strategies: 1, a plain share).
        const expected = applies ? f / (n - 1 + f) : 1 / n;
        // 40,000 picks: 3.5 standard deviations of a binomial count at n=10, f=0.1 is ±14 % of the expectation.
        const tolerance = Math.max(0.15 * expected, 0.002);
        rows.push(`n=${n} f=${f}: ${(share * 100).toFixed(2)} % (expected ${(expected * 100).toFixed(2)} %)`);
        assert.ok(Math.abs(share - expected) <= tolerance, `${strategy}\n${rows.join('\n')}`);
      }
    });
  }

  for (const strategy of strategyNames().filter((s) => !HASHING.has(s))) {
    it(`${strategy}: keeps a warming endpoint well below a full share while calls pile up`, async () => {
      const balancer = warming(strategy, 10, 0.1);
      const held: PickHandle[] = [];
      for (let i = 0; i < 5000; i++) held.push(balancer.pick());
      const inFlight = balancer.endpoints().find((e) => e.instance.id === 'e9')!.inFlight;
      for (const h of held) h.complete('success', 5);
      await balancer.close();
      // A full share would be 500; load-aware strategies let a less busy endpoint catch up part of the way
      // (least_connections as Envoy's weighted least_request: ~√factor of a share), the others hold it at ~10 %.
      assert.ok(inFlight < 500 * 0.4, `${strategy}: ${inFlight} of 5000 calls in flight on the warming endpoint`);
    });
  }

  it('zone_aware(least_connections): the wrapped strategy applies the weight too', async () => {
    const balancer = warming('least_connections', 10, 0.1, 'a');
    const share = newShare(balancer, 'e9', PICKS);
    await balancer.close();
    const expected = 0.1 / 9.1;
    assert.ok(Math.abs(share - expected) <= 0.15 * expected, `${share}`);
  });
});
