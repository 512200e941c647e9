import assert from 'node:assert/strict';
import { Balancer, createRandom } from '@shoal/balancer';
import { makeInstances } from '../helpers.js';
import { owners } from './consistent-hashing.js';

const keys = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);

describe('ring_hash', () => {
  it('maps the same key to the same endpoint, for strings and their UTF-8 bytes alike', () => {
    const b = new Balancer({ strategy: 'ring_hash', random: createRandom(1) });
    b.setEndpoints(makeInstances(10));
    for (const key of ['a', 'user-42', 'ünïcødé-🙂']) {
      const id = b.pick({ key }).instance.id;
      assert.equal(b.pick({ key }).instance.id, id);
      assert.equal(b.pick({ key: Buffer.from(key) }).instance.id, id);
    }
    void b.close();
  });

  it('spreads keys roughly evenly', () => {
    const counts = new Map<string, number>();
    for (const id of owners('ring_hash', 10, keys)) counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.equal(counts.size, 10);
    for (const c of counts.values()) assert.ok(c > 2000 * 0.7 && c < 2000 * 1.3, String(c));
  });

  it('moves only about 1/n of the keys when one of n endpoints leaves', () => {
    const before = owners('ring_hash', 10, keys);
    const after = owners('ring_hash', 10, keys, 'e3');
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== after[i]) {
        moved++;
        // Only keys that lived on the departed endpoint move.
        assert.equal(before[i], 'e3');
      }
    }
    const share = moved / keys.length;
    assert.ok(share > 0.05 && share < 0.15, `moved ${share}`);
  });

  it('falls back to a random endpoint when the pick has no key', () => {
    const b = new Balancer({ strategy: 'ring_hash', random: createRandom(2) });
    b.setEndpoints(makeInstances(5));
    const seen = new Set(Array.from({ length: 100 }, () => b.pick().instance.id));
    assert.equal(seen.size, 5);
    void b.close();
  });
});

describe('ring_hash options', () => {
  it('sizes the ring as Envoy does and rejects min > max', () => {
    assert.throws(
      () => new Balancer({ strategy: 'ring_hash', strategyOptions: { minRingSize: 10, maxRingSize: 5 } }),
      /strategyOptions\.minRingSize must be <= maxRingSize/,
    );
    assert.throws(() => new Balancer({ strategy: 'ring_hash', strategyOptions: { minRingSize: -1 } }), /minRingSize/);
  });

  it('gives heavier endpoints proportionally more keys', () => {
    const b = new Balancer({ strategy: 'ring_hash', random: createRandom(1) });
    b.setEndpoints(makeInstances(2, { weight: (i) => (i === 0 ? 3 : 1) }));
    let e0 = 0;
    for (const key of keys) if (b.pick({ key }).instance.id === 'e0') e0++;
    assert.ok(Math.abs(e0 / keys.length - 0.75) < 0.05, String(e0 / keys.length));
    void b.close();
  });
});
