/**
 * Earliest-deadline-first weighted scheduler (gRPC A58, Envoy's EDF): each entry has a period of 1/weight; a
 * pick takes the entry with the earliest deadline and pushes its deadline one period later. O(log n) per pick,
 * no allocation; over time entry i is picked in proportion to its weight.
 */
export class EdfScheduler {
  private heap: Int32Array = new Int32Array(0);
  private deadline: Float64Array = new Float64Array(0);
  private period: Float64Array = new Float64Array(0);
  private n = 0;

  get size(): number {
    return this.n;
  }

  /**
   * Rebuilds from weights (> 0). `offset(i)` in [0, 1) staggers the first deadlines (A58 uses a random one) so
   * equal weights do not all start together; omit it for a deterministic start.
   */
  build(weights: ArrayLike<number>, offset?: (i: number) => number): void {
    const n = weights.length;
    this.n = n;
    if (this.heap.length < n) {
      this.heap = new Int32Array(n);
      this.deadline = new Float64Array(n);
      this.period = new Float64Array(n);
    }
    for (let i = 0; i < n; i++) {
      const p = 1 / weights[i]!;
      this.period[i] = p;
      this.deadline[i] = (offset === undefined ? 0 : offset(i)) * p;
      this.heap[i] = i;
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** The index with the earliest deadline (ties: lowest index), advancing its deadline; -1 when empty. */
  next(): number {
    if (this.n === 0) return -1;
    const top = this.heap[0]!;
    this.deadline[top] = this.deadline[top]! + this.period[top]!;
    this.siftDown(0);
    return top;
  }

  /** The index with the earliest deadline, without advancing it; -1 when empty. */
  peek(): number {
    return this.n === 0 ? -1 : this.heap[0]!;
  }

  /**
   * Advances the earliest entry's deadline by its period × `scale` (Envoy's least_request re-adds a picked host
   * with weight / (active + 1), i.e. a period scaled by active + 1).
   */
  advanceTop(scale: number): void {
    if (this.n === 0) return;
    const top = this.heap[0]!;
    this.deadline[top] = this.deadline[top]! + this.period[top]! * scale;
    this.siftDown(0);
  }

  private less(a: number, b: number): boolean {
    const da = this.deadline[a]!;
    const db = this.deadline[b]!;
    return da < db || (da === db && a < b);
  }

  private siftDown(pos: number): void {
    const heap = this.heap;
    const n = this.n;
    const item = heap[pos]!;
    for (;;) {
      let child = 2 * pos + 1;
      if (child >= n) break;
      if (child + 1 < n && this.less(heap[child + 1]!, heap[child]!)) child++;
      if (!this.less(heap[child]!, item)) break;
      heap[pos] = heap[child]!;
      pos = child;
    }
    heap[pos] = item;
  }
}
