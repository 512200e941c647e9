import assert from 'node:assert/strict';
import { LATENCY_BUCKETS_MS, LATENCY_BUCKET_COUNT, latencyBucketIndex, latencyQuantile } from '@shoal/protocol';

describe('LATENCY_BUCKETS_MS', () => {
  it('is the fixed, documented shoal.v1 set of bounds', () => {
    assert.deepEqual([...LATENCY_BUCKETS_MS], [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]);
    assert.equal(LATENCY_BUCKET_COUNT, 14);
    assert.ok(Object.isFrozen(LATENCY_BUCKETS_MS));
  });

  it('puts a latency in the first bucket whose bound is >= it, the rest in overflow', () => {
    assert.equal(latencyBucketIndex(0), 0);
    assert.equal(latencyBucketIndex(1), 0);
    assert.equal(latencyBucketIndex(1.01), 1);
    assert.equal(latencyBucketIndex(10), 3);
    assert.equal(latencyBucketIndex(10000), 12);
    assert.equal(latencyBucketIndex(10000.5), 13);
  });

  it('estimates quantiles by interpolation inside a bucket', () => {
    const buckets = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
    assert.equal(latencyQuantile(buckets, 0.5), undefined);
    buckets[3] = 100; // all in (5, 10]
    assert.equal(latencyQuantile(buckets, 0.5), 7.5);
    assert.equal(latencyQuantile(buckets, 1), 10);
    buckets[13] = 100;
    assert.equal(latencyQuantile(buckets, 0.99), 10000);
  });
});
