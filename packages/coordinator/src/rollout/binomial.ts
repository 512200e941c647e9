/**
 * Exact binomial tails and the Clopper–Pearson upper bound: what the rollout's small-sample error test is made of
 * (version-comparison.ts). Sums of probability terms, walked away from the mode so each term is smaller than the
 * last and the sum stops once they no longer count; log space for the first term, so large counts neither
 * overflow nor lose the tail. Plain numbers in, plain numbers out; nothing is cached.
 */

/** ln C(n, k), by the product (n-k+1)/1 × … × n/k (k ≤ n/2 after symmetry; exact enough for any count here). */
function logChoose(n: number, k: number): number {
  const m = Math.min(k, n - k);
  let s = 0;
  for (let i = 0; i < m; i++) s += Math.log((n - i) / (i + 1));
  return s;
}

/** P(X = k) for X ~ Binomial(n, p), 0 < p < 1. */
function pmf(k: number, n: number, p: number): number {
  return Math.exp(logChoose(n, k) + k * Math.log(p) + (n - k) * Math.log1p(-p));
}

function checkCounts(k: number, n: number, p: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be an integer >= 0, got ${n}`);
  if (!Number.isInteger(k)) throw new RangeError(`k must be an integer, got ${k}`);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`p must be within [0, 1], got ${p}`);
}

/** P(X ≥ k) for X ~ Binomial(n, p). */
export function binomialUpperTail(k: number, n: number, p: number): number {
  checkCounts(k, n, p);
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p === 0) return 0;
  if (p === 1) return 1;
  if (k <= Math.floor((n + 1) * p)) return 1 - binomialLowerTail(k - 1, n, p);
  // k above the mode: P(k), P(k+1), ... only shrink.
  const ratio = p / (1 - p);
  let term = pmf(k, n, p);
  let sum = 0;
  for (let i = k; i <= n && term > 0; i++) {
    sum += term;
    if (term < sum * 1e-17) break;
    term *= ((n - i) / (i + 1)) * ratio;
  }
  return Math.min(1, sum);
}

/** P(X ≤ k) for X ~ Binomial(n, p). */
export function binomialLowerTail(k: number, n: number, p: number): number {
  checkCounts(k, n, p);
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p === 0) return 1;
  if (p === 1) return 0;
  if (k >= Math.floor((n + 1) * p)) return 1 - binomialUpperTail(k + 1, n, p);
  // k below the mode: P(k), P(k-1), ... only shrink.
  const ratio = (1 - p) / p;
  let term = pmf(k, n, p);
  let sum = 0;
  for (let i = k; i >= 0 && term > 0; i--) {
    sum += term;
    if (term < sum * 1e-17) break;
    term *= (i / (n - i + 1)) * ratio;
  }
  return Math.min(1, sum);
}

/**
 * The one-sided Clopper–Pearson upper bound of a proportion at confidence 1 − alpha: the largest p for which
 * seeing `k` or fewer in `n` still has probability ≥ alpha. So the true proportion is above it with probability
 * at most alpha. For k = 0 it is 1 − alpha^(1/n); with n = 0 (nothing seen) it is 1.
 */
export function binomialUpperBound(k: number, n: number, alpha: number): number {
  checkCounts(k, n, 0);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be within (0, 1), got ${alpha}`);
  if (k < 0 || k > n) throw new RangeError(`k must be within [0, n], got ${k} of ${n}`);
  if (k === n) return 1;
  if (k === 0) return -Math.expm1(Math.log(alpha) / n);
  // P(X ≤ k | p) falls as p grows: bisect for where it crosses alpha.
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 60 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (binomialLowerTail(k, n, mid) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}
