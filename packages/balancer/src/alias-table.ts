/**
 * Walker/Vose alias table: O(n) to build from weights, O(1) and one random number per weighted draw.
 */
export class AliasTable {
  private prob: Float64Array = new Float64Array(0);
  private alias: Int32Array = new Int32Array(0);
  private n = 0;

  /** Rebuilds the table from non-negative weights (all zero = uniform). */
  build(weights: ArrayLike<number>): void {
    const n = weights.length;
    this.n = n;
    if (this.prob.length < n) {
      this.prob = new Float64Array(n);
      this.alias = new Int32Array(n);
    }
    let total = 0;
    for (let i = 0; i < n; i++) total += weights[i]!;
    const prob = this.prob;
    const alias = this.alias;
    if (!(total > 0)) {
      for (let i = 0; i < n; i++) {
        prob[i] = 1;
        alias[i] = i;
      }
      return;
    }
    const scaled = new Float64Array(n);
    const small: number[] = [];
    const large: number[] = [];
    for (let i = 0; i < n; i++) {
      scaled[i] = (weights[i]! * n) / total;
      (scaled[i]! < 1 ? small : large).push(i);
    }
    while (small.length > 0 && large.length > 0) {
      const s = small.pop()!;
      const l = large.pop()!;
      prob[s] = scaled[s]!;
      alias[s] = l;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      (scaled[l]! < 1 ? small : large).push(l);
    }
    for (const i of large) {
      prob[i] = 1;
      alias[i] = i;
    }
    for (const i of small) {
      prob[i] = 1;
      alias[i] = i;
    }
  }

  /** A weighted index in [0, n) from one uniform number `u` in [0, 1); -1 when empty. */
  draw(u: number): number {
    const n = this.n;
    if (n === 0) return -1;
    const x = u * n;
    const i = x | 0;
    return x - i < this.prob[i]! ? i : this.alias[i]!;
  }
}
