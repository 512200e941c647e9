import assert from 'node:assert/strict';
import { RateLimiter } from '@shoal/coordinator/internal';

describe('RateLimiter', () => {
  it('allows a burst, then the refill rate', () => {
    const r = new RateLimiter(2, 3, 100);
    assert.deepEqual(
      [0, 0, 0, 0].map(() => r.take('a', 0)),
      [true, true, true, false],
    );
    assert.equal(r.take('a', 400), false);
    assert.equal(r.take('a', 500), true);
    assert.equal(r.take('b', 500), true, 'keys are independent');
  });

  it('keeps the number of keys bounded', () => {
    const r = new RateLimiter(1, 1, 100);
    for (let i = 0; i < 10_000; i++) r.take(`k${i}`, i);
    assert.ok(r.size <= 100, String(r.size));
  });
});
