import assert from 'node:assert/strict';
import { createRandom, SeededRandom } from '@shoal/core';

describe('SeededRandom', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const c = new SeededRandom(43);
    const sa = Array.from({ length: 10 }, () => a.next());
    assert.deepEqual(
      Array.from({ length: 10 }, () => b.next()),
      sa,
    );
    assert.notDeepEqual(
      Array.from({ length: 10 }, () => c.next()),
      sa,
    );
  });

  it('keeps mulberry32 sequence (simulations replay the same figures)', () => {
    const r = new SeededRandom(1);
    assert.equal(r.next(), 0.6270739405881613);
    assert.equal(r.next(), 0.002735721180215478);
  });

  it('draws normals with mean 0 and variance 1, and Poisson counts with mean lambda', () => {
    const r = new SeededRandom(7);
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < 50_000; i++) {
      const x = r.normal();
      sum += x;
      sq += x * x;
    }
    assert.ok(Math.abs(sum / 50_000) < 0.02);
    assert.ok(Math.abs(sq / 50_000 - 1) < 0.03);
    for (const lambda of [0, 3, 200]) {
      let total = 0;
      for (let i = 0; i < 20_000; i++) total += r.poisson(lambda);
      assert.ok(Math.abs(total / 20_000 - lambda) < Math.max(0.05, lambda * 0.01), `lambda ${lambda}`);
    }
  });

  it('backs createRandom, a Math.random-like function', () => {
    const f = createRandom(9);
    const r = new SeededRandom(9);
    assert.equal(f(), r.next());
    assert.throws(() => createRandom(Number.NaN), /seed must be a finite number, got NaN/);
  });
});
