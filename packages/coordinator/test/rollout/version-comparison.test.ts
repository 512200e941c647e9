import assert from 'node:assert/strict';
import fc from 'fast-check';
import { binomialLowerTail, binomialUpperBound, binomialUpperTail } from '../../src/rollout/binomial.js';
import {
  DEFAULT_THRESHOLDS,
  VersionComparison,
  exactErrorTest,
  type ComparisonThresholds,
} from '../../src/rollout/version-comparison.js';

const close = (actual: number, expected: number, relative = 1e-9) =>
  assert.ok(
    Math.abs(actual - expected) <= relative * Math.abs(expected),
    `expected ${expected}, got ${actual} (relative error ${Math.abs(actual - expected) / Math.abs(expected)})`,
  );

function compare(old: [number, number], next: [number, number], t: ComparisonThresholds = DEFAULT_THRESHOLDS) {
  const c = new VersionComparison(t);
  c.add('old', { requests: old[0], errors: old[1], latencyBuckets: [] });
  c.add('new', { requests: next[0], errors: next[1], latencyBuckets: [] });
  return c.verdict();
}

/** P(the new version is judged worse) for two versions with the same true error ratio p, at one look. */
function falseRollbackProbability(p: number, nOld: number, nNew: number, t = DEFAULT_THRESHOLDS): number {
  let total = 0;
  for (let kOld = 0; kOld <= nOld; kOld++) {
    const pOld = binomialLowerTail(kOld, nOld, p) - binomialLowerTail(kOld - 1, nOld, p);
    if (pOld < 1e-12) continue;
    // Worse is monotone in the new side's errors: find the fewest that are judged worse.
    if (!compare([nOld, kOld], [nNew, nNew], t).worse) continue;
    let lo = 0;
    let hi = nNew;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (compare([nOld, kOld], [nNew, mid], t).worse) hi = mid;
      else lo = mid + 1;
    }
    total += pOld * binomialUpperTail(lo, nNew, p);
  }
  return total;
}

/** A small seeded generator (mulberry32), so the simulation below is the same every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('rollout version comparison: the exact error test', () => {
  it('computes binomial tails and the Clopper–Pearson bound as by hand', () => {
    // P(X ≥ 2 | 4, 0.1) = 6·0.01·0.81 + 4·0.001·0.9 + 0.0001 = 0.0523; P(X ≤ 1) = 0.9^4 + 4·0.1·0.9^3 = 0.9477.
    close(binomialUpperTail(2, 4, 0.1), 0.0523);
    close(binomialLowerTail(1, 4, 0.1), 0.9477);
    // P(X ≥ 3 | 5, 0.5) = (10 + 5 + 1) / 32; P(X ≥ 30 | 40, 0.5) = Σ C(40, i) / 2^40 for i ≥ 30.
    close(binomialUpperTail(3, 5, 0.5), 0.5);
    close(binomialUpperTail(30, 40, 0.5), 0.0011107168866146822);
    // Σ_{i≥6} C(12, i) 0.1^i 0.9^(12−i), summed exactly in rationals.
    close(binomialUpperTail(6, 12, 0.1), 0.000541231822);
    // A million trials: P(X ≥ n/2 | n, ½) = ½ + C(n, n/2) / 2^(n+1) (the tail walk stops early; no overflow).
    close(binomialUpperTail(500_000, 1_000_000, 0.5), 0.5003989421806658, 1e-7);
    assert.equal(binomialUpperTail(0, 10, 0.3), 1);
    assert.equal(binomialUpperTail(11, 10, 0.3), 0);
    assert.equal(binomialUpperTail(1, 10, 0), 0);
    // Upper bounds: k = 0 → 1 − alpha^(1/n); P(X ≤ 1 | 2, p) = 1 − p² = ¼ → p = √¾; (1−p)²(1+2p) = ½ at p = ½.
    close(binomialUpperBound(0, 100, 0.001), 0.06674569920300895);
    close(binomialUpperBound(0, 150, 0.001), 0.045007413978564004);
    close(binomialUpperBound(1, 2, 0.25), Math.sqrt(0.75), 1e-9);
    close(binomialUpperBound(1, 3, 0.5), 0.5, 1e-9);
    assert.equal(binomialUpperBound(5, 5, 0.001), 1);
    assert.throws(() => binomialUpperBound(1, 2, 0), /alpha must be within \(0, 1\), got 0/);
    assert.throws(() => binomialUpperTail(1, -1, 0.5), /n must be an integer >= 0, got -1/);
  });

  it('judges a version failing half its calls on eight requests, with the numbers worked by hand', () => {
    // Old 0/150: its 99.9 % upper bound is 1 − 0.001^(1/150) = 0.0450074.
    // P(X ≥ 4 | 8, 0.0450074) = 0.000248 ≤ 0.001: worse. P(X ≥ 3 | 6, ·) = 0.00165: not yet.
    const eight = exactErrorTest({ requests: 150, errors: 0 }, { requests: 8, errors: 4 }, 0.05, 0.001);
    close(eight.oldUpperBound ?? NaN, 0.045007413978564004);
    close(eight.pValue, 0.00024813268993294636, 1e-6);
    assert.equal(eight.worse, true);
    const six = exactErrorTest({ requests: 150, errors: 0 }, { requests: 6, errors: 3 }, 0.05, 0.001);
    close(six.pValue, 0.0016453165508532649, 1e-6);
    assert.equal(six.worse, false);
    // Three errors in three calls: P = 0.0450074³ = 0.0000912, the fewest errors the test judges on.
    close(exactErrorTest({ requests: 150, errors: 0 }, { requests: 3, errors: 3 }, 0.05, 0.001).pValue, 9.117e-5, 1e-4);
    const verdict = compare([150, 0], [8, 4]);
    assert.equal(verdict.worse, true);
    assert.equal(
      verdict.worse && verdict.reason,
      'error ratio 50.0% (4/8) vs 0.0% (0/150) on the old version: P=0.00025 ≤ 0.001 even at its bound 4.5%',
    );
    assert.deepEqual(compare([150, 0], [6, 3]), {
      worse: false,
      reason:
        'no clear regression: error ratio 50.0% (3/6) vs 0.0% (0/150) on the old version (P=0.0016); latency is compared from 30 requests each',
    });
    assert.deepEqual(compare([0, 0], [6, 6]), { worse: false, reason: 'not enough requests yet (old 0, new 6)' });
    // alpha 0 turns error rollbacks off.
    assert.equal(compare([150, 0], [100, 50], { ...DEFAULT_THRESHOLDS, alpha: 0 }).worse, false);
  });

  it('does not judge before the old version has a record, nor on a difference under the margin', () => {
    // Old 0/10: its bound is 1 − 0.001^0.1 = 0.499, and P(X ≥ 20 | 40, 0.499) is about ½.
    assert.equal(compare([10, 0], [40, 20]).worse, false);
    // 2 errors in 60 against none in 600 is 3.3 points: noise, however significant.
    assert.equal(compare([600, 0], [60, 2]).worse, false);
    // 40 % against 36 %: under 5 points.
    assert.equal(compare([10_000, 3600], [10_000, 4000]).worse, false);
    // 11 % against 1 % on a hundred calls each side is judged.
    assert.equal(compare([1000, 10], [100, 11]).worse, true);
  });

  it('rolls back a slower version, but not for a handful of slow calls (a cold start on a busy machine)', () => {
    const buckets = (counts: Record<number, number>) => Array.from({ length: 14 }, (_, i) => counts[i] ?? 0);
    // Old: 400 calls, p95 in the (10, 25] ms bucket (22.6 ms), 5 over 25 ms.
    const old = { requests: 400, errors: 0, latencyBuckets: buckets({ 3: 300, 4: 95, 5: 5 }) };
    // New, warming up: 27 fast calls and 3 of 250–500 ms. Its p95 is 375 ms, but 3/30 over 25 ms against 5/400
    // is no clear slowdown (P = 0.12 at the old share's bound, 4.1 %).
    const cold = new VersionComparison();
    cold.add('old', old);
    cold.add('new', { requests: 30, errors: 0, latencyBuckets: buckets({ 3: 26, 4: 1, 8: 3 }) });
    assert.equal(cold.summary().new.latencyP95Ms, 375);
    assert.equal(cold.verdict().worse, false);
    // New, slower throughout: all 30 calls in (50, 100] ms.
    const slow = new VersionComparison();
    slow.add('old', old);
    slow.add('new', { requests: 30, errors: 0, latencyBuckets: buckets({ 6: 30 }) });
    const verdict = slow.verdict();
    assert.equal(verdict.worse && verdict.kind, 'latency');
    assert.match(
      verdict.worse ? verdict.reason : '',
      /^p95 latency 97\.5 ms vs 22\.6 ms on the old version; 30\/30 calls over 25 ms vs 5\/400, P=/,
    );
    // Fewer than minRequests: not judged on latency.
    const few = new VersionComparison();
    few.add('old', old);
    few.add('new', { requests: 20, errors: 0, latencyBuckets: buckets({ 6: 20 }) });
    assert.equal(few.verdict().worse, false);
    // Reports with a p99 but no histogram: the p95s (here the p99s) alone decide, as before.
    const bare = new VersionComparison();
    bare.add('old', { requests: 400, errors: 0, latencyBuckets: [], latencyP99Ms: 20 });
    bare.add('new', { requests: 30, errors: 0, latencyBuckets: [], latencyP99Ms: 100 });
    const bareVerdict = bare.verdict();
    assert.equal(bareVerdict.worse && bareVerdict.kind, 'latency');
  });

  it('never rolls back on one or two errors, whatever the counts (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 2 }),
        fc.double({ min: 0, max: 0.2, noNaN: true }),
        (oldRequests, newRequests, errors, oldRatio) =>
          !compare([oldRequests, Math.floor(oldRequests * oldRatio)], [Math.max(newRequests, errors), errors]).worse,
      ),
      { seed: 16, numRuns: 300 },
    );
  });

  it('judges equal versions worse with probability at most 2 × alpha at one look (summed exactly, fast-check)', () => {
    let worst = 0;
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 120 }),
        (p, nOld, nNew) => {
          const probability = falseRollbackProbability(p, nOld, nNew);
          worst = Math.max(worst, probability);
          return probability <= 2 * DEFAULT_THRESHOLDS.alpha;
        },
      ),
      { seed: 16, numRuns: 60 },
    );
    assert.ok(worst < 2 * DEFAULT_THRESHOLDS.alpha, `worst ${worst}`);
  });

  it('rarely rolls back equal versions over a whole bake of looks, and always catches half failing (simulation)', () => {
    // As the rollout feeds it: every 500 ms one report per ready replica, 4 old replicas and a new one whose share
    // grows as slow start does (10 % → 100 % of an old one's over 30 s), 60 looks (a 30 s bake), seeded.
    const random = seeded(16);
    const binomial = (n: number, p: number) => {
      let k = 0;
      for (let i = 0; i < n; i++) if (random() < p) k++;
      return k;
    };
    const bake = (pOld: number, pNew: number, perReplica: number): number | undefined => {
      const c = new VersionComparison();
      for (let look = 1; look <= 60; look++) {
        const share = 0.1 + (0.9 * look) / 60;
        for (let r = 0; r < 4; r++) {
          const n = binomial(2 * perReplica, 0.5);
          c.add('old', { requests: n, errors: binomial(n, pOld), latencyBuckets: [] });
        }
        const n = binomial(Math.round(2 * perReplica * share), 0.5);
        c.add('new', { requests: n, errors: binomial(n, pNew), latencyBuckets: [] });
        if (c.verdict().worse) return look;
      }
      return undefined;
    };
    let falseRollbacks = 0;
    let bakes = 0;
    for (const p of [0, 0.01, 0.05, 0.2]) {
      for (const perReplica of [3, 12]) {
        for (let i = 0; i < 100; i++, bakes++) if (bake(p, p, perReplica) !== undefined) falseRollbacks++;
      }
    }
    // (The two-proportion z-test this replaced, z ≥ 3 from 30 requests each: 30 in 2400 such bakes.)
    assert.ok(falseRollbacks <= 1, `${falseRollbacks} false rollback(s) in ${bakes} bakes of equal versions`);
    // At the benchmark's 12 calls/s per old replica, half failing is judged within seconds (the z-test: 10 s)...
    const half = Array.from({ length: 20 }, () => bake(0, 0.5, 6) ?? Infinity);
    assert.ok(Math.max(...half) <= 16, `half failing judged at looks ${half.join(', ')} (500 ms each)`);
    // ...and 11 % against 1 % within the bake.
    const tenPoints = Array.from({ length: 20 }, () => bake(0.01, 0.11, 12) ?? Infinity);
    assert.ok(Math.max(...tenPoints) <= 60, `+10 points judged at looks ${tenPoints.join(', ')}`);
  });
});
