import assert from 'node:assert/strict';
import sinon from 'sinon';
import { Registry } from 'prom-client';
import { ClosedError, InvalidArgumentError, NoEndpointsError, createInstance, hasErrorCode } from '@shoal/core';
import { Balancer, type EjectionEvent, type Endpoint } from '@shoal/balancer';
import { BUILT_IN_STRATEGIES, countPicks, makeBalancer, makeInstances } from './helpers.js';

describe('Balancer', () => {
  let balancer: Balancer | undefined;
  afterEach(async () => {
    await balancer?.close();
    balancer = undefined;
  });

  describe('endpoint set', () => {
    it('throws NoEndpointsError (retryable, SHOAL_ERR_NO_ENDPOINTS) with no endpoints', () => {
      ({ balancer } = makeBalancer());
      assert.throws(
        () => balancer!.pick(),
        (e: unknown) => e instanceof NoEndpointsError && hasErrorCode(e, 'SHOAL_ERR_NO_ENDPOINTS') && e.retryable,
      );
      balancer.setEndpoints(makeInstances(2));
      balancer.setEndpoints([]);
      assert.throws(() => balancer!.pick(), NoEndpointsError);
    });

    it('throws NoEndpointsError with zero endpoints for every strategy, also after the set emptied', async () => {
      for (const strategy of BUILT_IN_STRATEGIES) {
        const { balancer: b } = makeBalancer({ strategy });
        assert.throws(() => b.pick({ key: 'k' }), NoEndpointsError, strategy);
        b.setEndpoints(makeInstances(3));
        b.pick({ key: 'k' }).complete('success', 1);
        b.setEndpoints([]);
        assert.throws(() => b.pick({ key: 'k' }), NoEndpointsError, strategy);
        await b.close();
      }
    });

    it('always picks the only endpoint, for every strategy', async () => {
      for (const strategy of BUILT_IN_STRATEGIES) {
        const { balancer: b } = makeBalancer({ strategy });
        b.setEndpoints(makeInstances(1));
        for (let i = 0; i < 20; i++) {
          const h = b.pick({ key: `k${i}` });
          assert.equal(h.instance.id, 'e0', strategy);
          h.complete(i % 3 === 0 ? 'failure' : 'success', 5);
        }
        await b.close();
      }
    });

    it('handles 10,000 endpoints with every strategy and reaches most of them', async () => {
      const instances = makeInstances(10_000);
      for (const strategy of BUILT_IN_STRATEGIES) {
        const { balancer: b } = makeBalancer({ strategy });
        b.setEndpoints(instances);
        const seen = new Set<string>();
        for (let i = 0; i < 30_000; i++) {
          const h = b.pick({ key: `key-${i}` });
          seen.add(h.instance.id);
          h.complete('success', 1 + (i % 7));
        }
        // 30,000 uniform-ish picks over 10,000 endpoints reach ~95 %; require a clear majority for every strategy.
        assert.ok(seen.size > 6000, `${strategy} reached only ${seen.size} endpoints`);
        await b.close();
      }
    });

    it('keeps the stats of endpoints that survive an update and drops the others', () => {
      ({ balancer } = makeBalancer({ strategy: 'round_robin' }));
      balancer.setEndpoints(makeInstances(3));
      countPicks(balancer, 30, (id) => (id === 'e1' ? 40 : 10));
      const held = balancer.pick({ exclude: new Set(['e2']) });
      const before = balancer.endpoints().find((e) => e.instance.id === held.instance.id)!;
      const next = [...makeInstances(3).filter((i) => i.id !== 'e2'), ...makeInstances(1, { prefix: 'new' })];
      balancer.setEndpoints(next);
      const after = balancer.endpoints().find((e) => e.instance.id === held.instance.id)!;
      assert.equal(after.inFlight, 1);
      assert.equal(after.requests, before.requests);
      assert.ok(after.ewmaMs! > 0);
      assert.deepEqual(
        balancer.endpoints().map((e) => e.instance.id),
        ['e0', 'e1', 'new0'],
      );
      assert.equal(balancer.endpoints().find((e) => e.instance.id === 'new0')!.requests, 0);
      held.complete('success', 10);
      assert.equal(balancer.endpoints().find((e) => e.instance.id === held.instance.id)!.inFlight, 0);
    });

    it('skips endpoints marked unavailable, keeping their stats, and fails fast when none is available', () => {
      ({ balancer } = makeBalancer({ strategy: 'round_robin' }));
      balancer.setEndpoints(makeInstances(3));
      countPicks(balancer, 30, () => 7);
      balancer.setAvailable('e1', false);
      balancer.setAvailable('unknown', false);
      const counts = countPicks(balancer, 30);
      assert.equal(counts.get('e1'), undefined);
      const e1 = balancer.endpoints().find((e) => e.instance.id === 'e1')!;
      assert.equal(e1.available, false);
      assert.equal(e1.requests, 10);
      balancer.setAvailable('e0', false);
      balancer.setAvailable('e2', false);
      assert.throws(() => balancer!.pick(), /no available endpoint \(all 3 marked unavailable\)/);
      balancer.setAvailable('e1', true);
      assert.equal(balancer.pick().instance.id, 'e1');
      assert.throws(() => balancer!.setAvailable('e1', 'yes' as never), /available must be a boolean, got "yes"/);
    });

    it('lets a handle of a removed endpoint complete harmlessly', () => {
      ({ balancer } = makeBalancer({ strategy: 'round_robin' }));
      balancer.setEndpoints(makeInstances(1));
      const h = balancer.pick();
      balancer.setEndpoints(makeInstances(1, { prefix: 'x' }));
      h.complete('failure', 5);
      assert.equal(balancer.endpoints()[0]!.requests, 0);
    });

    it('updates the instance of a survivor (e.g. a new weight) without resetting it', () => {
      ({ balancer } = makeBalancer({ strategy: 'weighted_round_robin' }));
      balancer.setEndpoints(makeInstances(2));
      countPicks(balancer, 4);
      balancer.setEndpoints(makeInstances(2, { weight: (i) => (i === 0 ? 3 : 1) }));
      assert.equal(balancer.endpoints()[0]!.requests, 2);
      const counts = countPicks(balancer, 400);
      assert.equal(counts.get('e0'), 300);
    });

    it('does not rebuild the strategy when discovery repeats the same list', () => {
      let updates = 0;
      const strategy = {
        name: 'counting',
        eps: [] as readonly Endpoint[],
        update(ready: readonly Endpoint[]) {
          updates++;
          this.eps = ready;
        },
        pick() {
          return this.eps[0];
        },
      };
      ({ balancer } = makeBalancer({ strategy }));
      balancer.setEndpoints(makeInstances(3));
      const afterFirst = updates;
      balancer.setEndpoints(makeInstances(3)); // equal copies
      assert.equal(updates, afterFirst);
      balancer.setEndpoints(makeInstances(3).map((i) => ({ ...i, address: '10.9.9.9' })));
      assert.equal(updates, afterFirst);
      assert.equal(balancer.pick().instance.address, '10.9.9.9');
      balancer.setEndpoints(makeInstances(3, { weight: () => 2 }));
      assert.equal(updates, afterFirst + 1);
      balancer.setEndpoints(makeInstances(3, { weight: () => 2 }).reverse());
      assert.equal(updates, afterFirst + 2);
    });

    it('rejects bad weights, duplicate ids and non-arrays, naming the field', () => {
      ({ balancer } = makeBalancer());
      const good = makeInstances(3);
      const withWeight = (w: unknown) => [good[0]!, { ...good[1]!, weight: w as number }, good[2]!];
      assert.throws(() => balancer!.setEndpoints(withWeight(-1)), /instances\[1\]\.weight must be .* got -1/);
      assert.throws(() => balancer!.setEndpoints(withWeight(NaN)), /instances\[1\]\.weight must be .* got NaN/);
      assert.throws(() => balancer!.setEndpoints(withWeight(0)), InvalidArgumentError);
      assert.throws(() => balancer!.setEndpoints(withWeight(Infinity)), /got Infinity/);
      assert.throws(() => balancer!.setEndpoints(withWeight('2')), /got "2"/);
      assert.throws(
        () => balancer!.setEndpoints([good[0]!, good[0]!]),
        /instances\[1\]\.id duplicates instances\[0\]\.id/,
      );
      assert.throws(() => balancer!.setEndpoints(null as never), /instances must be an array/);
      assert.throws(() => balancer!.setEndpoints([{ ...good[0]!, id: '' }]), /instances\[0\]\.id/);
      // A rejected update changes nothing.
      assert.equal(balancer.size, 0);
    });
  });

  describe('pick handles', () => {
    it('counts in-flight calls until completed; complete() is idempotent', () => {
      ({ balancer } = makeBalancer({ strategy: 'round_robin' }));
      balancer.setEndpoints(makeInstances(1));
      const a = balancer.pick();
      const b = balancer.pick();
      assert.equal(balancer.endpoints()[0]!.inFlight, 2);
      a.complete('success', 10);
      a.complete('failure', 99);
      assert.equal(balancer.endpoints()[0]!.inFlight, 1);
      assert.equal(balancer.endpoints()[0]!.requests, 1);
      assert.equal(balancer.endpoints()[0]!.failures, 0);
      b.complete('failure', 20);
      const snap = balancer.endpoints()[0]!;
      assert.equal(snap.inFlight, 0);
      assert.equal(snap.failures, 1);
      assert.equal(snap.recentFailures, 1);
      assert.equal(snap.recentRequests, 2);
    });

    it('rejects an unknown outcome and a negative or NaN latency, and the handle stays open', () => {
      ({ balancer } = makeBalancer());
      balancer.setEndpoints(makeInstances(1));
      const h = balancer.pick();
      assert.throws(() => h.complete('ok' as never, 1), /outcome must be "success" or "failure", got "ok"/);
      assert.throws(() => h.complete('success', -1), /latencyMs must be a finite number >= 0, got -1/);
      assert.throws(() => h.complete('success', NaN), /got NaN/);
      assert.throws(() => h.complete('success', 1, { utilization: -0.5 }), /load\.utilization .* got -0.5/);
      assert.equal(balancer.endpoints()[0]!.inFlight, 1);
      h.complete('success', 1);
      assert.equal(balancer.endpoints()[0]!.inFlight, 0);
    });

    it('sweeps handles never completed with one coarse timer, not one per request', () => {
      const r = makeBalancer({ handleTimeoutMs: 5000, sweepIntervalMs: 1000 });
      balancer = r.balancer;
      const { clock } = r;
      balancer.setEndpoints(makeInstances(2));
      const timersBefore = clock.pending;
      const leaked = Array.from({ length: 100 }, () => balancer!.pick());
      assert.equal(clock.pending, timersBefore, 'picks must not start timers');
      assert.equal(timersBefore, 1);
      const total = () => balancer!.endpoints().reduce((n, e) => n + e.inFlight, 0);
      assert.equal(total(), 100);
      clock.advance(4000);
      assert.equal(total(), 100, 'too early to sweep');
      clock.advance(6000);
      assert.equal(total(), 0, 'swept within 2 × handleTimeoutMs');
      // Completing a swept handle does not drive the count negative.
      for (const h of leaked) h.complete('success', 1);
      assert.equal(total(), 0);
      // A handle completed in the generation after its pick is still subtracted exactly once.
      const h = balancer.pick();
      clock.advance(5000);
      assert.equal(total(), 1);
      h.complete('success', 1);
      assert.equal(total(), 0);
    });

    it('honours ctx.exclude and throws NoEndpointsError when everything is excluded', () => {
      for (const strategy of BUILT_IN_STRATEGIES) {
        const { balancer: b } = makeBalancer({ strategy });
        b.setEndpoints(makeInstances(3));
        const exclude = new Set(['e0', 'e1']);
        for (let i = 0; i < 30; i++) {
          const h = b.pick({ exclude, key: `k${i}` });
          assert.equal(h.instance.id, 'e2', strategy);
          h.complete('success', 1);
        }
        assert.throws(() => b.pick({ exclude: new Set(['e0', 'e1', 'e2']) }), NoEndpointsError);
        void b.close();
      }
    });

    it('refuses picks after close() and completes old handles harmlessly', async () => {
      const r = makeBalancer();
      balancer = r.balancer;
      balancer.setEndpoints(makeInstances(1));
      const h = balancer.pick();
      await balancer.close();
      assert.equal(r.clock.pending, 0, 'the sweep timer is cleared');
      assert.throws(() => balancer!.pick(), ClosedError);
      assert.throws(() => balancer!.setEndpoints([]), ClosedError);
      h.complete('success', 1);
      await balancer.close();
    });
  });

  describe('slow start', () => {
    it('ramps a new endpoint from minWeightPercent to a full share over the window', () => {
      const r = makeBalancer({
        strategy: 'round_robin',
        slowStart: { windowMs: 10_000, minWeightPercent: 10 },
        outlierDetection: false,
      });
      balancer = r.balancer;
      balancer.setEndpoints(makeInstances(4));
      balancer.setEndpoints(makeInstances(5));
      const share = () => (countPicks(balancer!, 5000).get('e4') ?? 0) / 5000;
      const fair = 1 / 5;
      const s0 = share();
      assert.ok(s0 < fair * 0.25, `new endpoint starts small: ${s0}`);
      r.clock.advance(5000);
      const factor = balancer.endpoints().find((e) => e.instance.id === 'e4')!.slowStartFactor;
      assert.ok(Math.abs(factor - 0.5) < 0.01, `factor at half window ${factor}`);
      const s5 = share();
      assert.ok(s5 > s0 && s5 < fair * 0.85, `half-way share ${s5}`);
      r.clock.advance(6000);
      assert.equal(balancer.endpoints().find((e) => e.instance.id === 'e4')!.slowStartFactor, 1);
      const s10 = share();
      assert.ok(Math.abs(s10 - fair) < 0.02, `full share after the window ${s10}`);
    });

    it('follows the aggression curve: share = (t / window)^(1 / aggression)', () => {
      const r = makeBalancer({ strategy: 'random', slowStart: { windowMs: 10_000, aggression: 2 } });
      balancer = r.balancer;
      balancer.setEndpoints(makeInstances(2));
      balancer.setEndpoints(makeInstances(3));
      r.clock.advance(4000);
      const f = balancer.endpoints().find((e) => e.instance.id === 'e2')!.slowStartFactor;
      assert.ok(Math.abs(f - Math.sqrt(0.4)) < 0.01, String(f));
    });

    it('does not slow-start the first endpoints, nor a set where every endpoint is new', () => {
      ({ balancer } = makeBalancer({ slowStart: { windowMs: 10_000 } }));
      balancer.setEndpoints(makeInstances(3));
      assert.ok(balancer.endpoints().every((e) => e.slowStartFactor === 1));
      balancer.setEndpoints(makeInstances(3, { prefix: 'z' }));
      assert.ok(balancer.endpoints().every((e) => e.slowStartFactor === 1));
    });

    it('applies to P2C strategies too: a new, unmeasured endpoint is not flooded', () => {
      const r = makeBalancer({ strategy: 'least_request', slowStart: { windowMs: 30_000 } });
      balancer = r.balancer;
      balancer.setEndpoints(makeInstances(9));
      balancer.setEndpoints(makeInstances(10));
      const share = (countPicks(balancer, 10_000).get('e9') ?? 0) / 10_000;
      assert.ok(share < 0.1 * 0.3, `share ${share}`);
    });
  });

  describe('outlier ejection', () => {
    it('ejects after consecutive failures, for a growing time, and brings the endpoint back', () => {
      const r = makeBalancer({
        strategy: 'round_robin',
        slowStart: false,
        outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 10_000, maxEjectionPercent: 50, intervalMs: 1000 },
      });
      balancer = r.balancer;
      const events: EjectionEvent[] = [];
      const returned: string[] = [];
      balancer.onEject((e) => events.push(e));
      balancer.onReturn((i) => returned.push(i.id));
      balancer.setEndpoints(makeInstances(4));
      const bad = (id: string) => (id === 'e1' ? 'failure' : 'success');
      countPicks(balancer, 12, () => 1, bad);
      assert.equal(events.length, 1);
      assert.equal(events[0]!.instance.id, 'e1');
      assert.equal(events[0]!.reason, 'consecutive_failures');
      assert.equal(events[0]!.durationMs, 10_000);
      assert.equal(countPicks(balancer, 300, () => 1, bad).get('e1'), undefined);
      r.clock.advance(10_000);
      assert.deepEqual(returned, ['e1']);
      assert.ok(
        (countPicks(
          balancer,
          40,
          () => 1,
          () => 'success',
        ).get('e1') ?? 0) > 0,
      );
      // Fails again: ejected for twice as long (multiplier 2), since no clean interval passed yet.
      countPicks(balancer, 12, () => 1, bad);
      assert.equal(events.length, 2);
      assert.equal(events[1]!.durationMs, 20_000);
      r.clock.advance(10_000);
      assert.equal(balancer.endpoints().find((e) => e.instance.id === 'e1')!.ejected, true);
      r.clock.advance(10_000);
      assert.equal(balancer.endpoints().find((e) => e.instance.id === 'e1')!.ejected, false);
    });

    it('never ejects more than maxEjectionPercent of the endpoints', () => {
      ({ balancer } = makeBalancer({
        strategy: 'round_robin',
        outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 20 },
      }));
      balancer.setEndpoints(makeInstances(10));
      countPicks(
        balancer,
        200,
        () => 1,
        () => 'failure',
      );
      const ejected = balancer.endpoints().filter((e) => e.ejected).length;
      assert.equal(ejected, 2);
    });

    it('ejects on a failure percentage over an interval (with enough requests and hosts)', () => {
      const r = makeBalancer({
        strategy: 'round_robin',
        outlierDetection: {
          consecutiveFailures: 0,
          successRateEjection: false,
          failurePercentageEjection: { threshold: 40, requestVolume: 20, minimumHosts: 4 },
          intervalMs: 5000,
          maxEjectionPercent: 50,
        },
      });
      balancer = r.balancer;
      balancer.setEndpoints(makeInstances(4));
      let n = 0;
      // e2 fails every other call: 50 %, never 3 in a row.
      countPicks(
        balancer,
        200,
        () => 1,
        (id) => (id === 'e2' && n++ % 2 === 0 ? 'failure' : 'success'),
      );
      assert.ok(balancer.endpoints().every((e) => !e.ejected));
      r.clock.advance(5000);
      const ejected = balancer
        .endpoints()
        .filter((e) => e.ejected)
        .map((e) => e.instance.id);
      assert.deepEqual(ejected, ['e2']);
      const e2 = balancer.endpoints().find((e) => e.instance.id === 'e2')!;
      assert.equal(e2.recentRequests, 50);
      assert.equal(e2.recentFailures, 25);
      r.clock.advance(10_000); // two more intervals: the recent counters forget
      assert.equal(balancer.endpoints().find((e) => e.instance.id === 'e2')!.recentRequests, 0);
    });

    it('keeps serving in panic mode when every endpoint is ejected', () => {
      ({ balancer } = makeBalancer({ outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 100 } }));
      balancer.setEndpoints(makeInstances(2));
      countPicks(
        balancer,
        10,
        () => 1,
        () => 'failure',
      );
      assert.ok(balancer.endpoints().every((e) => e.ejected));
      assert.ok(['e0', 'e1'].includes(balancer.pick().instance.id));
    });

    it('works with sinon fake timers and the real clock', async () => {
      const clock = sinon.useFakeTimers({ now: 1_000_000 });
      try {
        const b = new Balancer({
          strategy: 'round_robin',
          outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 3000, maxEjectionPercent: 50 },
        });
        b.setEndpoints(makeInstances(2));
        countPicks(
          b,
          4,
          () => 1,
          (id) => (id === 'e0' ? 'failure' : 'success'),
        );
        assert.equal(b.endpoints()[0]!.ejected, true);
        clock.tick(3000);
        assert.equal(b.endpoints()[0]!.ejected, false);
        await b.close();
        assert.equal(clock.countTimers(), 0);
      } finally {
        clock.restore();
      }
    });
  });

  describe('retry budget', () => {
    it('allows retries up to ratio × requests + minRetriesPerSecond × ttl, then refuses and counts it', async () => {
      const registry = new Registry();
      const r = makeBalancer({
        retryBudget: { ratio: 0.1, minRetriesPerSecond: 1, ttlMs: 10_000 },
        registry,
        name: 'orders',
      });
      balancer = r.balancer;
      balancer.setEndpoints(makeInstances(2));
      countPicks(balancer, 100);
      // 100 requests × 0.1 + 1/s × 10 s = 20 retries.
      let allowed = 0;
      while (balancer.tryRetry()) allowed++;
      assert.equal(allowed, 20);
      const refusals = await registry.getSingleMetric('shoal_balancer_retry_budget_refusals_total')!.get();
      assert.equal(refusals.values[0]!.value, 1);
      assert.deepEqual(refusals.values[0]!.labels, { balancer: 'orders' });
      // The window slides: after ttl the old requests and retries are forgotten; only the floor is left.
      r.clock.advance(10_000);
      allowed = 0;
      while (balancer.tryRetry()) allowed++;
      assert.equal(allowed, 10);
    });

    it('is unlimited when disabled', () => {
      ({ balancer } = makeBalancer({ retryBudget: false }));
      for (let i = 0; i < 1000; i++) assert.equal(balancer.tryRetry(), true);
    });
  });

  describe('server-reported load', () => {
    it('records reports by instance id, validates them and ignores unknown ids', () => {
      ({ balancer } = makeBalancer());
      balancer.setEndpoints(makeInstances(2));
      balancer.reportLoad('e1', { utilization: 0.5, rps: 100, eps: 1 });
      balancer.reportLoad('gone', { utilization: 0.5 });
      assert.deepEqual(balancer.endpoints()[1]!.load, { utilization: 0.5, rps: 100, eps: 1 });
      assert.equal(balancer.endpoints()[0]!.load, undefined);
      assert.throws(() => balancer!.reportLoad('e1', { rps: NaN }), /load\.rps must be a finite number >= 0, got NaN/);
      balancer.pick().complete('success', 1, { cpu: 0.25 });
    });
  });

  describe('metrics', () => {
    it('counts picks, ejections and endpoints on the registry passed in', async () => {
      const registry = new Registry();
      ({ balancer } = makeBalancer({
        strategy: 'round_robin',
        registry,
        name: 'orders',
        outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 50 },
      }));
      balancer.setEndpoints(makeInstances(2));
      countPicks(
        balancer,
        9,
        () => 1,
        (id) => (id === 'e0' ? 'failure' : 'success'),
      );
      const text = await registry.metrics();
      assert.match(text, /shoal_balancer_picks_total\{balancer="orders",strategy="round_robin"\} 9/);
      assert.match(text, /shoal_balancer_ejections_total\{balancer="orders",reason="consecutive_failures"\} 1/);
      assert.match(text, /shoal_balancer_endpoints\{balancer="orders",state="ejected"\} 1/);
      assert.match(text, /shoal_balancer_endpoints\{balancer="orders",state="ready"\} 1/);
      // A second balancer on the same registry shares the metrics instead of failing to register them.
      const other = new Balancer({ registry, name: 'users' });
      await other.close();
    });
  });

  describe('options', () => {
    it('selects strategies by name, class, factory function or object', async () => {
      const { RoundRobinStrategy } = await import('@shoal/balancer');
      const byClass = new Balancer({ strategy: RoundRobinStrategy });
      assert.equal(byClass.strategyName, 'round_robin');
      const byFn = new Balancer({ strategy: (o, env) => new RoundRobinStrategy(o, env) });
      assert.equal(byFn.strategyName, 'round_robin');
      const object = {
        name: 'first',
        endpoints: [] as readonly Endpoint[],
        update(ready: readonly Endpoint[]) {
          this.endpoints = ready;
        },
        pick() {
          return this.endpoints[0];
        },
      };
      const byObject = new Balancer({ strategy: object });
      byObject.setEndpoints(makeInstances(3));
      assert.equal(byObject.pick().instance.id, 'e0');
      await Promise.all([byClass.close(), byFn.close(), byObject.close()]);
    });

    it('uses createInstance-made instances as given', () => {
      ({ balancer } = makeBalancer());
      const inst = createInstance({ id: 'a', service: 's', address: '::1', port: 1 });
      balancer.setEndpoints([inst]);
      assert.equal(balancer.pick().instance, inst);
    });
  });
});
