import { EdfScheduler } from '../edf-scheduler.js';
import type { Endpoint } from '../endpoint.js';
import { optionObject } from '../options-util.js';
import type { Strategy, StrategyEnv, StrategyOptions } from '../strategy.js';

/**
 * `least_connections`: the endpoint with the fewest calls in flight; among equals the one that has waited longest
 * at that count, so ties rotate. Endpoints sit in FIFO buckets by in-flight count (intrusive doubly linked lists
 * over typed arrays) with a pointer to the lowest non-empty bucket: a pick and each start/end of a call move one
 * endpoint between adjacent buckets, O(1). A re-pick within one `pick()` (an excluded endpoint) takes a random
 * endpoint.
 *
 * While an endpoint warms up (slow start), picks follow Envoy's weighted least_request instead: an EDF schedule in
 * which an endpoint's next turn comes (in-flight + 1) / `slowStartFactor` after its last one, O(log n). Under equal
 * load that is a weighted round robin (a warming endpoint's share is its weighted share); a busy endpoint's turns
 * come later.
 */
export class LeastConnectionsStrategy implements Strategy {
  readonly name = 'least_connections';
  private endpoints: readonly Endpoint[] = [];
  private index = new Map<Endpoint, number>();
  /** Bucket (in-flight count) each endpoint is filed under. */
  private level: Int32Array = new Int32Array(0);
  private next: Int32Array = new Int32Array(0);
  private prev: Int32Array = new Int32Array(0);
  /** Per bucket: first and last endpoint index, -1 when empty. */
  private head: Int32Array = new Int32Array(0);
  private tail: Int32Array = new Int32Array(0);
  private minLevel = 0;
  /** True while some endpoint warms up: picks come from `edf`, and the buckets are not maintained. */
  private weighted = false;
  private readonly edf = new EdfScheduler();

  constructor(
    options: StrategyOptions,
    private readonly env: StrategyEnv,
  ) {
    optionObject('strategyOptions', options, []);
  }

  update(ready: readonly Endpoint[]): void {
    const n = ready.length;
    this.endpoints = ready;
    this.weighted = ready.some((e) => e.slowStartFactor !== 1);
    if (this.weighted) {
      const random = this.env.random;
      this.edf.build(
        ready.map((e) => e.slowStartFactor),
        () => random(),
      );
      this.index = new Map();
      return;
    }
    this.index = new Map();
    this.level = new Int32Array(n);
    this.next = new Int32Array(n).fill(-1);
    this.prev = new Int32Array(n).fill(-1);
    let maxLevel = 0;
    for (const ep of ready) maxLevel = Math.max(maxLevel, ep.inFlight);
    this.head = new Int32Array(Math.max(16, maxLevel + 2)).fill(-1);
    this.tail = new Int32Array(this.head.length).fill(-1);
    this.minLevel = Number.MAX_SAFE_INTEGER;
    // File in ascending in-flight order, keeping list order among equals.
    const order = ready.map((_, i) => i).sort((a, b) => ready[a]!.inFlight - ready[b]!.inFlight || a - b);
    for (const i of order) {
      this.index.set(ready[i]!, i);
      this.append(i, Math.max(0, ready[i]!.inFlight));
    }
    if (n === 0) this.minLevel = 0;
  }

  pick(_ctx: unknown, attempt: number): Endpoint | undefined {
    const eps = this.endpoints;
    if (eps.length === 0) return undefined;
    if (attempt > 0) return eps[Math.floor(this.env.random() * eps.length)];
    if (this.weighted) {
      const i = this.edf.peek();
      const ep = eps[i]!;
      this.edf.advanceTop(ep.inFlight < 0 ? 1 : ep.inFlight + 1);
      return ep;
    }
    return eps[this.head[this.minLevel]!];
  }

  onPick(ep: Endpoint): void {
    this.sync(ep);
  }

  onComplete(ep: Endpoint): void {
    this.sync(ep);
  }

  /** Re-files `ep` under its current in-flight count, at the back of that bucket. */
  private sync(ep: Endpoint): void {
    const i = this.index.get(ep);
    if (i === undefined) return;
    const to = ep.inFlight < 0 ? 0 : ep.inFlight;
    const from = this.level[i]!;
    if (to === from) return;
    this.unlink(i, from);
    this.append(i, to);
    if (from === this.minLevel && this.head[from] === -1) {
      let m = from + 1;
      while (m < this.head.length && this.head[m] === -1) m++;
      this.minLevel = Math.min(m, to);
    }
  }

  private append(i: number, lvl: number): void {
    if (lvl >= this.head.length) {
      const size = Math.max(lvl + 1, this.head.length * 2);
      const head = new Int32Array(size).fill(-1);
      const tail = new Int32Array(size).fill(-1);
      head.set(this.head);
      tail.set(this.tail);
      this.head = head;
      this.tail = tail;
    }
    const last = this.tail[lvl]!;
    this.prev[i] = last;
    this.next[i] = -1;
    if (last === -1) this.head[lvl] = i;
    else this.next[last] = i;
    this.tail[lvl] = i;
    this.level[i] = lvl;
    if (lvl < this.minLevel) this.minLevel = lvl;
  }

  private unlink(i: number, lvl: number): void {
    const p = this.prev[i]!;
    const nx = this.next[i]!;
    if (p === -1) this.head[lvl] = nx;
    else this.next[p] = nx;
    if (nx === -1) this.tail[lvl] = p;
    else this.prev[nx] = p;
  }
}
