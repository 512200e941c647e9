import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { NoEndpointsError } from '@shoal/core';
import type { Balancer, BalancerOptions, EjectionEvent, OutlierDetectionOptions } from '@shoal/balancer';
import { countPicks, makeBalancer, makeInstances } from './helpers.js';

/**
 * Sends `perEndpoint` × n calls round robin; endpoint `id` fails `failPercent[id]` percent of its calls, spread
 * out (never two failures in a row below 50 %), so consecutive-failure ejection stays out of the way.
 */
function traffic(balancer: Balancer, n: number, perEndpoint: number, failPercent: Record<string, number>): void {
  const seen = new Map<string, number>();
  for (let i = 0; i < n * perEndpoint; i++) {
    const h = balancer.pick();
    const id = h.instance.id;
    const k = seen.get(id) ?? 0;
    seen.set(id, k + 1);
    const pct = failPercent[id] ?? 0;
    // Failure on the calls where the running count of failures owed crosses an integer: exact and even.
    const fails = Math.floor(((k + 1) * pct) / 100) > Math.floor((k * pct) / 100);
    h.complete(fails ? 'failure' : 'success', 2);
  }
}

function setup(n: number, outlierDetection: OutlierDetectionOptions, extra: BalancerOptions = {}) {
  const made = makeBalancer({
    strategy: 'round_robin',
    slowStart: false,
    outlierDetection: { consecutiveFailures: 0, intervalMs: 10_000, ...outlierDetection },
    ...extra,
  });
  const events: EjectionEvent[] = [];
  made.balancer.onEject((e) => events.push(e));
  made.balancer.setEndpoints(makeInstances(n));
  return { ...made, events };
}

const ejectedIds = (b: Balancer) =>
  b
    .endpoints()
    .filter((e) => e.ejected)
    .map((e) => e.instance.id);

describe('outlier detection (gRPC A50)', () => {
  let balancer: Balancer | undefined;
  afterEach(async () => {
    await balancer?.close();
    balancer = undefined;
  });

  describe('success rate', () => {
    it('ejects an endpoint below mean − 1.9 stdev at the end of the interval, not before', () => {
      const s = setup(6, { maxEjectionPercent: 50 });
      balancer = s.balancer;
      // Success rates 99 % × 5 and 70 %: mean 94.2 %, stdev 10.8 %, threshold 73.6 %.
      traffic(balancer, 6, 120, { e0: 1, e1: 1, e2: 1, e3: 30, e4: 1, e5: 1 });
      assert.deepEqual(ejectedIds(balancer), [], 'nothing happens before the interval ends');
      s.clock.advance(10_000);
      assert.deepEqual(ejectedIds(balancer), ['e3']);
      assert.deepEqual(
        s.events.map((e) => [e.instance.id, e.reason, e.durationMs]),
        [['e3', 'success_rate', 30_000]],
      );
    });

    it('needs minimumHosts endpoints with requestVolume calls each', () => {
      const few = setup(4, { maxEjectionPercent: 50 });
      balancer = few.balancer;
      traffic(balancer, 4, 150, { e3: 30 });
      few.clock.advance(10_000);
      assert.deepEqual(ejectedIds(balancer), [], 'only 4 hosts, minimumHosts is 5');
      void balancer.close();

      const quiet = setup(6, { maxEjectionPercent: 50 });
      balancer = quiet.balancer;
      traffic(balancer, 6, 99, { e3: 30 });
      quiet.clock.advance(10_000);
      assert.deepEqual(ejectedIds(balancer), [], '99 calls each, requestVolume is 100');
      void balancer.close();

      // With n hosts one outlier lies at most √(n − 1) stdevs below the mean: at 1.9 that needs 5 hosts (A50's
      // minimumHosts), so 4 hosts need a smaller stdevFactor.
      const tuned = setup(4, {
        maxEjectionPercent: 50,
        successRateEjection: { minimumHosts: 4, requestVolume: 50, stdevFactor: 1000 },
      });
      balancer = tuned.balancer;
      traffic(balancer, 4, 60, { e3: 30 });
      tuned.clock.advance(10_000);
      assert.deepEqual(ejectedIds(balancer), ['e3']);
    });

    it('ejects nobody when every endpoint fails alike (stdev 0), or when enforcementPercentage is 0', () => {
      const alike = setup(6, { maxEjectionPercent: 50 });
      balancer = alike.balancer;
      traffic(balancer, 6, 120, { e0: 20, e1: 20, e2: 20, e3: 20, e4: 20, e5: 20 });
      alike.clock.advance(10_000);
      assert.deepEqual(ejectedIds(balancer), []);
      void balancer.close();

      const unenforced = setup(6, { maxEjectionPercent: 50, successRateEjection: { enforcementPercentage: 0 } });
      balancer = unenforced.balancer;
      traffic(balancer, 6, 120, { e3: 50 });
      unenforced.clock.advance(10_000);
      assert.deepEqual(ejectedIds(balancer), []);
    });

    it('stops at maxEjectionPercent', () => {
      // Three outliers widen the stdev; at 1 stdev all three are below (threshold 54.5 %), the cap keeps 2.
      const s = setup(10, { maxEjectionPercent: 20, successRateEjection: { stdevFactor: 1000 } });
      balancer = s.balancer;
      traffic(balancer, 10, 120, { e1: 60, e4: 60, e7: 60 });
      s.clock.advance(10_000);
      assert.equal(ejectedIds(balancer).length, 2);
    });

    it('judges each interval on its own calls', () => {
      const s = setup(6, { maxEjectionPercent: 50 });
      balancer = s.balancer;
      traffic(balancer, 6, 120, {}); // a clean interval
      s.clock.advance(10_000);
      traffic(balancer, 6, 120, { e2: 40 });
      assert.deepEqual(ejectedIds(balancer), []);
      s.clock.advance(10_000);
      assert.deepEqual(ejectedIds(balancer), ['e2']);
    });
  });

  describe('failure percentage', () => {
    it('is off unless configured (opt-in, as in Envoy)', () => {
      const s = setup(6, { successRateEjection: false, maxEjectionPercent: 50 });
      balancer = s.balancer;
      traffic(balancer, 6, 120, { e0: 90, e1: 90, e2: 90, e3: 90, e4: 90, e5: 90 });
      s.clock.advance(10_000);
      assert.deepEqual(ejectedIds(balancer), []);
    });

    it('ejects above threshold percent with requestVolume calls and minimumHosts hosts', () => {
      const s = setup(6, { successRateEjection: false, failurePercentageEjection: {}, maxEjectionPercent: 50 });
      balancer = s.balancer;
      // Everyone fails a lot: success rate would see nothing unusual, failure percentage does (> 85 %).
      traffic(balancer, 6, 60, { e0: 50, e1: 50, e2: 50, e3: 90, e4: 50, e5: 85 });
      s.clock.advance(10_000);
      assert.deepEqual(ejectedIds(balancer), ['e3'], 'e5 is at the threshold, not above');
      assert.equal(s.events[0]!.reason, 'failure_rate');
    });
  });

  describe('ejection time', () => {
    it('lasts base × times ejected, capped at maxEjectionMs, and the count decays by one per clean interval', () => {
      const s = setup(4, {
        consecutiveFailures: 3,
        successRateEjection: false,
        baseEjectionMs: 10_000,
        maxEjectionMs: 25_000,
        intervalMs: 5000,
        maxEjectionPercent: 50,
      });
      balancer = s.balancer;
      const failE1 = () =>
        countPicks(
          balancer!,
          12,
          () => 1,
          (id) => (id === 'e1' ? 'failure' : 'success'),
        );
      const durations = () => s.events.map((e) => e.durationMs);
      failE1();
      assert.deepEqual(durations(), [10_000]);
      s.clock.advance(10_000);
      failE1();
      assert.deepEqual(durations(), [10_000, 20_000]);
      s.clock.advance(20_000);
      failE1();
      assert.deepEqual(durations(), [10_000, 20_000, 25_000], 'min(3 × 10 s, 25 s)');
      s.clock.advance(25_000);
      // Back, with multiplier 3: three clean intervals bring it to 0, so the next ejection lasts the base again.
      s.clock.advance(15_000);
      failE1();
      assert.deepEqual(durations(), [10_000, 20_000, 25_000, 10_000]);
    });
  });

  describe('healthy panic threshold', () => {
    const failing = (ids: string[]) => (id: string) => (ids.includes(id) ? 'failure' : 'success');

    it('balances over every endpoint, ejected ones included, when fewer than 50 % are healthy', async () => {
      const registry = new Registry();
      const s = setup(
        4,
        { consecutiveFailures: 1, successRateEjection: false, maxEjectionPercent: 100 },
        { registry, name: 'orders' },
      );
      balancer = s.balancer;
      countPicks(balancer, 8, () => 1, failing(['e0', 'e1']));
      assert.deepEqual(ejectedIds(balancer), ['e0', 'e1']);
      assert.equal(balancer.panicking, false, '2 of 4 healthy is not below 50 %');
      assert.deepEqual([...countPicks(balancer, 40).keys()].sort(), ['e2', 'e3']);
      countPicks(balancer, 4, () => 1, failing(['e2']));
      assert.deepEqual(ejectedIds(balancer), ['e0', 'e1', 'e2']);
      assert.equal(balancer.panicking, true);
      const spread = countPicks(balancer, 400);
      for (const id of ['e0', 'e1', 'e2', 'e3']) assert.equal(spread.get(id), 100, id);
      assert.match(await registry.metrics(), /shoal_balancer_panic\{balancer="orders"\} 1/);
      s.clock.advance(30_000); // the ejections end
      assert.equal(balancer.panicking, false);
      assert.match(await registry.metrics(), /shoal_balancer_panic\{balancer="orders"\} 0/);
    });

    it('follows healthyPanicThresholdPercent; 0 never panics and fails picks when nothing is healthy', () => {
      const strict = setup(
        4,
        { consecutiveFailures: 1, successRateEjection: false, maxEjectionPercent: 100 },
        { healthyPanicThresholdPercent: 75 },
      );
      balancer = strict.balancer;
      countPicks(balancer, 4, () => 1, failing(['e0', 'e1']));
      assert.equal(balancer.panicking, true, '2 of 4 healthy is below 75 %');
      void balancer.close();

      const never = setup(
        2,
        { consecutiveFailures: 1, successRateEjection: false, maxEjectionPercent: 100 },
        { healthyPanicThresholdPercent: 0 },
      );
      balancer = never.balancer;
      countPicks(balancer, 2, () => 1, failing(['e0', 'e1']));
      assert.equal(balancer.panicking, false);
      assert.throws(() => balancer!.pick(), NoEndpointsError);
      assert.throws(() => balancer!.pick(), /no healthy endpoint \(all 2 available ones ejected/);
    });
  });
});
