import assert from 'node:assert/strict';
import { InvalidArgumentError, realClock } from '@shoal/core';
import { resolveBalancerOptions } from '@shoal/balancer';

describe('resolveBalancerOptions', () => {
  it('applies the documented defaults and freezes the result', () => {
    const o = resolveBalancerOptions();
    assert.equal(o.strategy, 'peak_ewma');
    assert.deepEqual(o.slowStart, { windowMs: 30_000, aggression: 1, minWeightPercent: 10 });
    assert.deepEqual(o.outlierDetection, {
      consecutiveFailures: 5,
      successRateEjection: { stdevFactor: 1900, enforcementPercentage: 100, minimumHosts: 5, requestVolume: 100 },
      failurePercentageEjection: false,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 10,
    });
    assert.equal(o.healthyPanicThresholdPercent, 50);
    assert.deepEqual(o.retryBudget, { ratio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 });
    assert.deepEqual(o.zoneAware, { minHealthyPercent: 70, spilloverLoadFactor: 2 });
    assert.equal(o.handleTimeoutMs, 60_000);
    assert.equal(o.sweepIntervalMs, 1000);
    assert.equal(o.ewmaDecayMs, 10_000);
    assert.equal(o.random, Math.random);
    assert.equal(o.name, 'default');
    assert.equal(o.clock, realClock);
    assert.ok(Object.isFrozen(o) && Object.isFrozen(o.slowStart) && Object.isFrozen(o.outlierDetection));
  });

  it('turns features off with false and keeps maxEjectionMs >= baseEjectionMs', () => {
    const o = resolveBalancerOptions({
      slowStart: false,
      outlierDetection: { baseEjectionMs: 60_000, maxEjectionMs: 1000 },
      retryBudget: false,
    });
    assert.equal(o.slowStart, false);
    assert.equal(o.retryBudget, false);
    assert.ok(o.outlierDetection !== false && o.outlierDetection.maxEjectionMs === 60_000);
    assert.equal(resolveBalancerOptions({ outlierDetection: false }).outlierDetection, false);
  });

  it('turns failure-percentage ejection on with {} (A50 values); the removed failureRate* options are refused', () => {
    const on = resolveBalancerOptions({ outlierDetection: { failurePercentageEjection: {} } }).outlierDetection;
    assert.ok(on !== false);
    assert.deepEqual(on.failurePercentageEjection, {
      threshold: 85,
      enforcementPercentage: 100,
      minimumHosts: 5,
      requestVolume: 50,
    });
    const chosen = resolveBalancerOptions({
      outlierDetection: { failurePercentageEjection: { threshold: 50, requestVolume: 20 } },
    }).outlierDetection;
    assert.ok(chosen !== false && chosen.failurePercentageEjection !== false);
    assert.equal(chosen.failurePercentageEjection.threshold, 50);
    assert.equal(chosen.failurePercentageEjection.requestVolume, 20);
    for (const removed of ['failureRateThreshold', 'failureRateMinRequests']) {
      assert.throws(
        () => resolveBalancerOptions({ outlierDetection: { [removed]: 0.5 } as never }),
        new RegExp(`outlierDetection.*${removed}`),
      );
    }
    const off = resolveBalancerOptions({ outlierDetection: { successRateEjection: false } }).outlierDetection;
    assert.ok(off !== false && off.successRateEjection === false);
  });

  it('resolves once: a resolved object is passed on as it is, and a context only overrides per-balancer fields', async () => {
    const { Balancer } = await import('@shoal/balancer');
    const resolved = resolveBalancerOptions({ strategy: 'round_robin', slowStart: false });
    assert.equal(resolveBalancerOptions(resolved), resolved);
    // A copy (e.g. from another copy of the package) is valid input and resolves to the same values.
    assert.deepEqual(resolveBalancerOptions({ ...resolved }), resolved);
    const b = new Balancer(resolved, { name: 'orders', localZone: 'a' });
    assert.equal(b.strategyName, 'zone_aware(round_robin)');
    await b.close();
    assert.throws(() => new Balancer(resolved, { name: '' }), /name must be a non-empty string/);
    assert.throws(
      () => new Balancer(resolved, { strategy: 'random' } as never),
      /context has an unknown option "strategy"/,
    );
  });

  it('rejects bad values, naming the option and the value', () => {
    const bad: Array<[object, RegExp]> = [
      [{ strategy: 42 }, /strategy must be .* got 42/],
      [{ strategyOptions: 'x' }, /strategyOptions must be an object, got "x"/],
      [{ slowStart: { windowMs: -1 } }, /slowStart\.windowMs must be .* got -1/],
      [{ slowStart: {} }, /slowStart\.windowMs/],
      [{ slowStart: { windowMs: 1000, aggression: 0 } }, /slowStart\.aggression .* got 0/],
      [{ slowStart: { windowMs: 1000, minWeightPercent: 101 } }, /slowStart\.minWeightPercent .* got 101/],
      [{ outlierDetection: { maxEjectionPercent: 150 } }, /outlierDetection\.maxEjectionPercent .* got 150/],
      [{ outlierDetection: { consecutiveFailures: 1.5 } }, /outlierDetection\.consecutiveFailures must be an integer/],
      [
        { outlierDetection: { failurePercentageEjection: { threshold: NaN } } },
        /failurePercentageEjection\.threshold .* got NaN/,
      ],
      [
        { outlierDetection: { successRateEjection: { minimumHosts: 0 } } },
        /outlierDetection\.successRateEjection\.minimumHosts must be an integer >= 1 .* got 0/,
      ],
      [
        { outlierDetection: { successRateEjection: { stdevFactor: -1 } } },
        /outlierDetection\.successRateEjection\.stdevFactor .* got -1/,
      ],
      [
        { outlierDetection: { failurePercentageEjection: { threshold: 101 } } },
        /outlierDetection\.failurePercentageEjection\.threshold .* got 101/,
      ],
      [
        { outlierDetection: { failurePercentageEjection: { enforcementPercentage: 'all' } } },
        /failurePercentageEjection\.enforcementPercentage .* got "all"/,
      ],
      [{ outlierDetection: { successRateEjection: 'on' } }, /outlierDetection\.successRateEjection must be an object/],
      [{ healthyPanicThresholdPercent: 120 }, /healthyPanicThresholdPercent must be .* got 120/],
      [{ outlierDetection: { typo: 1 } }, /outlierDetection has an unknown option "typo"/],
      [{ retryBudget: { ratio: -0.1 } }, /retryBudget\.ratio .* got -0.1/],
      [{ retryBudget: { ttlMs: 10 } }, /retryBudget\.ttlMs .* got 10/],
      [{ handleTimeoutMs: 0 }, /handleTimeoutMs .* got 0/],
      [{ sweepIntervalMs: 1 }, /sweepIntervalMs .* got 1/],
      [{ ewmaDecayMs: Infinity }, /ewmaDecayMs .* got Infinity/],
      [{ random: 4 }, /random must be a function, got 4/],
      [{ localZone: '' }, /localZone must be a non-empty string/],
      [{ zoneAware: { minHealthyPercent: -1 } }, /zoneAware\.minHealthyPercent .* got -1/],
      [{ clock: {} }, /clock must be a Clock/],
      [{ colour: 'blue' }, /options has an unknown option "colour"/],
    ];
    for (const [opts, re] of bad) {
      assert.throws(() => resolveBalancerOptions(opts as never), re, JSON.stringify(opts));
      assert.throws(() => resolveBalancerOptions(opts as never), InvalidArgumentError);
    }
  });
});
