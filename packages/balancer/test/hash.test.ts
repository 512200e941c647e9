import assert from 'node:assert/strict';
import { hashKey } from '@shoal/balancer';

describe('hashKey', () => {
  it('hashes a string exactly as its UTF-8 bytes', () => {
    for (const s of ['', 'a', 'user-1', 'é', '日本', '🙂 emoji', 'lone \ud800 surrogate']) {
      assert.equal(hashKey(s), hashKey(Buffer.from(s, 'utf8')), JSON.stringify(s));
    }
  });

  it('gives 32-bit unsigned values that differ by seed and spread over buckets', () => {
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) {
      const h = hashKey(`k${i}`);
      assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
      buckets[h >>> 28]!++;
    }
    for (const b of buckets) assert.ok(Math.abs(b - 1000) < 150, String(b));
    assert.notEqual(hashKey('x', 1), hashKey('x', 2));
  });

  it('rejects a key that is neither a string nor bytes, naming it', () => {
    assert.throws(() => hashKey(42 as never), /key must be a string or a Uint8Array\/Buffer, got 42/);
  });
});
