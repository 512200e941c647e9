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
      failureRateThreshold: 0.85,
      failureRateMinRequests: 50,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 10,
    });
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
      [{ outlierDetection: { failureRateThreshold: NaN } }, /failureRateThreshold .* got NaN/],
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
