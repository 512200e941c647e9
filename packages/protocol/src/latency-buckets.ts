/**
 * Upper bounds (inclusive, milliseconds) of the latency histogram every `LoadReport` carries. Fixed for shoal.v1:
 * changing them would change the meaning of `latencyBuckets` on the wire, so it would need shoal.v2.
 *
 * `latencyBuckets[i]` counts requests with `LATENCY_BUCKETS_MS[i-1] < latency <= LATENCY_BUCKETS_MS[i]`
 * (`LATENCY_BUCKETS_MS[-1]` taken as 0, latency 0 included in bucket 0); the extra last element counts everything
 * above the last bound. Counts are per bucket (not cumulative as in Prometheus).
 */
export const LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([
  1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
]);

/** Length of a non-empty `latencyBuckets` array: one per bound plus the overflow bucket. */
export const LATENCY_BUCKET_COUNT = LATENCY_BUCKETS_MS.length + 1;

/** Index of the bucket a latency of `ms` falls into (`LATENCY_BUCKETS_MS.length` for the overflow bucket). */
export function latencyBucketIndex(ms: number): number {
  // A linear scan over 13 bounds beats a binary search at this size and allocates nothing.
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
    if (ms <= (LATENCY_BUCKETS_MS[i] as number)) return i;
  }
  return LATENCY_BUCKETS_MS.length;
}

/**
 * Estimates the `q` quantile (0..1) from per-bucket counts by linear interpolation inside the bucket, as
 * Prometheus's `histogram_quantile` does. Values in the overflow bucket are reported as the last bound.
 * Returns `undefined` when the histogram is empty.
 */
export function latencyQuantile(buckets: readonly number[], q: number): number | undefined {
  let total = 0;
  for (const c of buckets) total += c;
  if (total === 0) return undefined;
  const rank = Math.min(1, Math.max(0, q)) * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const count = buckets[i] as number;
    if (count > 0 && seen + count >= rank) {
      if (i >= LATENCY_BUCKETS_MS.length) return LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1] as number;
      const lower = i === 0 ? 0 : (LATENCY_BUCKETS_MS[i - 1] as number);
      const upper = LATENCY_BUCKETS_MS[i] as number;
      return lower + ((upper - lower) * (rank - seen)) / count;
    }
    seen += count;
  }
  return LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1] as number;
}
