import assert from 'node:assert/strict';
import { RingBuffer } from '@shoal/core/internal';

describe('RingBuffer', () => {
  it('keeps the newest items, oldest first', () => {
    const b = new RingBuffer<number>(3);
    assert.equal(b.last(), undefined);
    for (const n of [1, 2, 3, 4]) b.push(n);
    assert.deepEqual(b.toArray(), [2, 3, 4]);
    assert.equal(b.size, 3);
    assert.equal(b.last(), 4);
  });

  it('refuses a capacity below 1', () => {
    assert.throws(() => new RingBuffer(0), /capacity/);
  });
});
