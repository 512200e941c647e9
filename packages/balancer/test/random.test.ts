import assert from 'node:assert/strict';
import { createRandom } from '@shoal/balancer';

describe('createRandom', () => {
  it('is deterministic per seed and different across seeds', () => {
    const a = createRandom(42);
    const b = createRandom(42);
    const c = createRandom(43);
    const sa = Array.from({ length: 10 }, a);
    assert.deepEqual(Array.from({ length: 10 }, b), sa);
    assert.notDeepEqual(Array.from({ length: 10 }, c), sa);
  });

  it('yields numbers in [0, 1) with a uniform mean and spread', () => {
    const r = createRandom(7);
    let sum = 0;
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const x = r();
      assert.ok(x >= 0 && x < 1);
      sum += x;
      buckets[Math.floor(x * 10)]!++;
    }
    assert.ok(Math.abs(sum / 100_000 - 0.5) < 0.01);
    for (const b of buckets) assert.ok(Math.abs(b - 10_000) < 500, String(b));
  });

  it('rejects a non-finite seed', () => {
    assert.throws(() => createRandom(NaN), /seed must be a finite number, got NaN/);
  });
});
