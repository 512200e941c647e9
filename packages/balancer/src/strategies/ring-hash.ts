import { InvalidArgumentError } from '@shoal/core';
import type { Endpoint } from '../endpoint.js';
import { hashKey, mixHash } from '../hash.js';
import { numberOption, optionObject } from '../options-util.js';
import type { PickContext, Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

const MAX_RING = 8_388_608;
const INDEX_BITS = 2 ** 21;

/**
 * `ring_hash` (Envoy ring_hash, gRPC A42): consistent hashing of `ctx.key` on a ring of virtual nodes. Each
 * endpoint gets weight × k points, k a power of two chosen so the ring holds at least `minRingSize` points
 * (default 1024) and at most `maxRingSize` (default 8,388,608). Point positions depend only on the instance id and
 * k only changes when the total weight crosses a power of two, so when one of n endpoints leaves only its ≈1/n of
 * the keys move (Envoy's exact scaling re-sizes every endpoint and moves more). Lookup is a binary search,
 * O(log ring size). A pick without a key takes a random endpoint. A re-pick (excluded key owner) rehashes.
 * Slow start does not apply (it would move keys).
 */
export class RingHashStrategy implements Strategy {
  readonly name = 'ring_hash';
  readonly slowStart = false;
  private readonly minRingSize: number;
  private readonly maxRingSize: number;
  private endpoints: readonly Endpoint[] = [];
  private hashes: Uint32Array = new Uint32Array(0);
  private owners: Int32Array = new Int32Array(0);
  private readonly idHash = new Map<string, number>();

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    const o = optionObject('strategyOptions', options, ['minRingSize', 'maxRingSize']);
    this.minRingSize = numberOption('strategyOptions.minRingSize', o.minRingSize, 1024, 1, MAX_RING, {
      integer: true,
    });
    this.maxRingSize = numberOption('strategyOptions.maxRingSize', o.maxRingSize, MAX_RING, 1, MAX_RING, {
      integer: true,
    });
    if (this.minRingSize > this.maxRingSize) {
      throw new InvalidArgumentError(
        `strategyOptions.minRingSize must be <= maxRingSize (${this.maxRingSize}), got ${this.minRingSize}`,
      );
    }
  }

  /** Ring points currently held. */
  get ringSize(): number {
    return this.hashes.length;
  }

  update(ready: readonly Endpoint[]): void {
    const n = ready.length;
    this.endpoints = ready;
    if (n === 0) {
      this.hashes = new Uint32Array(0);
      this.owners = new Int32Array(0);
      return;
    }
    if (n >= INDEX_BITS)
      throw new InvalidArgumentError(`ring_hash supports at most ${INDEX_BITS - 1} endpoints, got ${n}`);
    let total = 0;
    for (const ep of ready) total += ep.weight;
    // Points per unit of weight: a power of two giving at least minRingSize points in all. Rounding to a power of
    // two keeps every survivor's points unchanged when one endpoint joins or leaves (unless the total weight
    // crosses a power-of-two boundary), so only the keys of the departed endpoint move.
    let perWeight = 2 ** Math.ceil(Math.log2(Math.max(1, this.minRingSize / total)));
    if (perWeight * total > this.maxRingSize) perWeight = this.maxRingSize / total;
    const counts = ready.map((ep) => Math.max(1, Math.ceil(ep.weight * perWeight)));
    const size = counts.reduce((a, b) => a + b, 0);
    const packed = new Float64Array(size);
    let k = 0;
    for (let i = 0; i < n; i++) {
      const base = this.hashOf(ready[i]!.id);
      for (let v = 0; v < counts[i]!; v++) packed[k++] = mixHash(base, v) * INDEX_BITS + i;
    }
    packed.sort();
    this.hashes = new Uint32Array(size);
    this.owners = new Int32Array(size);
    for (let p = 0; p < size; p++) {
      const x = packed[p]!;
      const h = Math.floor(x / INDEX_BITS);
      this.hashes[p] = h;
      this.owners[p] = x - h * INDEX_BITS;
    }
    if (this.idHash.size > 4 * n + 1024) this.idHash.clear();
  }

  private hashOf(id: string): number {
    let h = this.idHash.get(id);
    if (h === undefined) {
      h = hashKey(id);
      this.idHash.set(id, h);
    }
    return h;
  }

  pick(ctx: PickContext | undefined, attempt: number): Endpoint | undefined {
    const eps = this.endpoints;
    if (eps.length === 0) return undefined;
    const key = ctx?.key;
    if (key === undefined) return eps[Math.floor(this.env.random() * eps.length)];
    let h = hashKey(key);
    if (attempt > 0) h = mixHash(h, attempt);
    const hashes = this.hashes;
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    if (lo === hashes.length) lo = 0;
    return eps[this.owners[lo]!];
  }
}
