import type { Endpoint } from '../endpoint.js';
import { hashKey, mixHash } from '../hash.js';
import { numberOption, optionObject } from '../options-util.js';
import { InvalidArgumentError } from '@shoal/core';
import type { PickContext, Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

function nextPrime(n: number): number {
  let p = Math.max(2, Math.ceil(n));
  while (!isPrime(p)) p++;
  return p;
}

/**
 * `maglev` (Google's Maglev, Envoy maglev): consistent hashing through a lookup table of prime size `tableSize`
 * (default 65537, Envoy's), filled from each endpoint's permutation (offset, skip from two hashes of its id),
 * weighted as Envoy does. Lookup is O(1): `table[hash(key) % size]`. When one of n endpoints leaves, ≈1/n of keys
 * move (slightly more than ring_hash, in exchange for even spread and O(1) lookup). If there are more endpoints
 * than table slots the table grows to the next prime ≥ 10 × n. A pick without a key is random; slow start does
 * not apply.
 */
export class MaglevStrategy implements Strategy {
  readonly name = 'maglev';
  readonly slowStart = false;
  private readonly tableSize: number;
  private endpoints: readonly Endpoint[] = [];
  private table: Int32Array = new Int32Array(0);

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    const o = optionObject('strategyOptions', options, ['tableSize']);
    this.tableSize = numberOption('strategyOptions.tableSize', o.tableSize, 65537, 2, 5_000_011, { integer: true });
    if (!isPrime(this.tableSize)) {
      throw new InvalidArgumentError(`strategyOptions.tableSize must be a prime number, got ${this.tableSize}`);
    }
  }

  update(ready: readonly Endpoint[]): void {
    const n = ready.length;
    this.endpoints = ready;
    if (n === 0) {
      this.table = new Int32Array(0);
      return;
    }
    const m = n > this.tableSize ? nextPrime(10 * n) : this.tableSize;
    const offset = new Float64Array(n);
    const skip = new Float64Array(n);
    const next = new Float64Array(n);
    const count = new Float64Array(n);
    const norm = new Float64Array(n);
    let maxWeight = 0;
    for (const ep of ready) maxWeight = Math.max(maxWeight, ep.weight);
    for (let i = 0; i < n; i++) {
      const h = hashKey(ready[i]!.id);
      offset[i] = mixHash(h, 1) % m;
      skip[i] = (mixHash(h, 2) % (m - 1)) + 1;
      norm[i] = ready[i]!.weight / maxWeight;
    }
    const table = new Int32Array(m).fill(-1);
    let filled = 0;
    for (let iteration = 1; filled < m; iteration++) {
      for (let i = 0; i < n && filled < m; i++) {
        if (iteration * norm[i]! < count[i]!) continue;
        count[i]!++;
        let c = (offset[i]! + next[i]! * skip[i]!) % m;
        while (table[c] !== -1) {
          next[i]!++;
          c = (offset[i]! + next[i]! * skip[i]!) % m;
        }
        next[i]!++;
        table[c] = i;
        filled++;
      }
    }
    this.table = table;
  }

  pick(ctx: PickContext | undefined, attempt: number): Endpoint | undefined {
    const eps = this.endpoints;
    if (eps.length === 0) return undefined;
    const key = ctx?.key;
    if (key === undefined) return eps[Math.floor(this.env.random() * eps.length)];
    let h = hashKey(key);
    if (attempt > 0) h = mixHash(h, attempt);
    return eps[this.table[h % this.table.length]!];
  }
}
