import type { Endpoint } from '../endpoint.js';
import { optionObject } from '../options-util.js';
import type { Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

/**
 * `least_connections`: the endpoint with the fewest calls in flight; among equals, the one picked least recently,
 * so ties rotate. An indexed binary heap keyed on (in-flight, last pick), fixed up in O(log n) when a call
 * starts or ends. A re-pick within one `pick()` (excluded or warming endpoint) takes a random endpoint.
 */
export class LeastConnectionsStrategy implements Strategy {
  readonly name = 'least_connections';
  private endpoints: readonly Endpoint[] = [];
  private heap: Int32Array = new Int32Array(0);
  private pos: Int32Array = new Int32Array(0);
  private lastPick: Float64Array = new Float64Array(0);
  private index = new Map<Endpoint, number>();
  private seq = 0;

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    optionObject('strategyOptions', options, []);
  }

  update(ready: readonly Endpoint[]): void {
    const n = ready.length;
    const previous = this.lastPick;
    const previousIndex = this.index;
    this.endpoints = ready;
    this.heap = new Int32Array(n);
    this.pos = new Int32Array(n);
    this.lastPick = new Float64Array(n);
    this.index = new Map();
    for (let i = 0; i < n; i++) {
      const ep = ready[i]!;
      this.index.set(ep, i);
      const old = previousIndex.get(ep);
      this.lastPick[i] = old === undefined ? 0 : previous[old]!;
      this.heap[i] = i;
      this.pos[i] = i;
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  pick(_ctx: unknown, attempt: number): Endpoint | undefined {
    const eps = this.endpoints;
    if (eps.length === 0) return undefined;
    if (attempt > 0) return eps[Math.floor(this.env.random() * eps.length)];
    return eps[this.heap[0]!];
  }

  onPick(ep: Endpoint): void {
    const i = this.index.get(ep);
    if (i === undefined) return;
    this.lastPick[i] = ++this.seq;
    this.siftDown(this.pos[i]!);
  }

  onComplete(ep: Endpoint): void {
    const i = this.index.get(ep);
    if (i === undefined) return;
    this.siftUp(this.pos[i]!);
  }

  private less(a: number, b: number): boolean {
    const fa = this.endpoints[a]!.inFlight;
    const fb = this.endpoints[b]!.inFlight;
    return fa < fb || (fa === fb && this.lastPick[a]! < this.lastPick[b]!);
  }

  private siftDown(p: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[p]!;
    for (;;) {
      let c = 2 * p + 1;
      if (c >= n) break;
      if (c + 1 < n && this.less(heap[c + 1]!, heap[c]!)) c++;
      if (!this.less(heap[c]!, item)) break;
      heap[p] = heap[c]!;
      this.pos[heap[p]!] = p;
      p = c;
    }
    heap[p] = item;
    this.pos[item] = p;
  }

  private siftUp(p: number): void {
    const heap = this.heap;
    const item = heap[p]!;
    while (p > 0) {
      const parent = (p - 1) >> 1;
      if (!this.less(item, heap[parent]!)) break;
      heap[p] = heap[parent]!;
      this.pos[heap[p]!] = p;
      p = parent;
    }
    heap[p] = item;
    this.pos[item] = p;
  }
}
