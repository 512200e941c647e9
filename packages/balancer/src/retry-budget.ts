/**
 * A retry budget (Finagle `RetryBudget`, Linkerd `retry_ratio` + `min_retries_per_second`): over a sliding window
 * of `ttlMs`, retries may not exceed `ratio` × original requests + `minRetriesPerSecond` × the window in seconds.
 *
 * The window is a ring of buckets, one per balancer sweep tick, so counting costs one array increment and
 * advancing costs nothing per request.
 */
export class RetryBudget {
  private readonly requests: Float64Array;
  private readonly retries: Float64Array;
  private current = 0;
  private requestSum = 0;
  private retrySum = 0;
  private readonly reserve: number;

  constructor(
    private readonly ratio: number,
    minRetriesPerSecond: number,
    ttlMs: number,
    tickMs: number,
  ) {
    const buckets = Math.max(1, Math.ceil(ttlMs / tickMs));
    this.requests = new Float64Array(buckets);
    this.retries = new Float64Array(buckets);
    this.reserve = minRetriesPerSecond * (ttlMs / 1000);
  }

  /** Counts one call. Retries count too (their own pick), as Finagle deposits on every request. */
  onRequest(): void {
    this.requests[this.current]!++;
    this.requestSum++;
  }

  /** Retries still allowed now. */
  available(): number {
    return Math.floor(this.requestSum * this.ratio + this.reserve - this.retrySum);
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryWithdraw(): boolean {
    if (this.available() < 1) return false;
    this.retries[this.current]!++;
    this.retrySum++;
    return true;
  }

  /** Advances the window by one tick, forgetting the oldest bucket. */
  rotate(): void {
    const n = this.requests.length;
    this.current = (this.current + 1) % n;
    this.requestSum -= this.requests[this.current]!;
    this.retrySum -= this.retries[this.current]!;
    this.requests[this.current] = 0;
    this.retries[this.current] = 0;
  }
}
