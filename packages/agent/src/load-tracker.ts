import { LATENCY_BUCKET_COUNT, latencyBucketIndex, latencyQuantile } from '@shoal/protocol';
import { realClock, type Clock } from '@shoal/core';

/**
 * Marks an HTTP response as already counted (its value is the start reading, or -1 once finished or refused), so
 * that two instrumentations installed on the same request (say the `node:http` wrapper and the Express
 * middleware) count it once. `Symbol.for` makes the mark shared by every copy of this package in the process.
 */
export const TRACKED: unique symbol = Symbol.for('shoal.agent.tracked') as never;

/** What one report interval saw. */
export interface IntervalLoad {
  /** Time-weighted mean of in-flight requests over the interval. */
  inFlightAvg: number;
  requests: number;
  errors: number;
  latencyBuckets: number[];
  latencyP50Ms?: number;
  latencyP99Ms?: number;
}

/** Totals since the tracker was created, read by Prometheus at scrape time. */
export interface LoadTotals {
  readonly requests: number;
  readonly errors: number;
  /** Per-bucket counts on LATENCY_BUCKETS_MS (+ overflow), not cumulative. */
  readonly buckets: readonly number[];
  readonly sumMs: number;
}

/**
 * In-flight, request, error and latency counting for every instrumentation. The hot path (`begin` / `end`) does a
 * few integer updates and one clock read each, and allocates nothing; Prometheus reads the totals at scrape time.
 */
export class LoadTracker {
  /** Requests started and not yet finished. */
  inFlight = 0;
  private requests = 0;
  private errors = 0;
  private buckets: number[] = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
  private idleWaiters: Array<() => void> = [];
  private readonly totalBuckets: number[] = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
  private totalRequests = 0;
  private totalErrors = 0;
  private totalMs = 0;
  /** Integral of in-flight over time since the interval started (request-milliseconds), and its bookkeeping. */
  private inFlightArea = 0;
  private lastChange: number;
  private intervalStart: number;

  /**
   * The monotonic reading. For the real clock, `performance.now` bound once here: `realClock.monotonic()` looks
   * the `performance` global (a getter) up at every call, which costs about as much again as the reading itself
   * on this hot path. Fake timers installed before the agent is created still take effect.
   */
  private readonly now: () => number;

  constructor(clock: Clock) {
    const perf = globalThis.performance;
    this.now = clock === realClock ? perf.now.bind(perf) : () => clock.monotonic();
    this.lastChange = this.intervalStart = this.now();
  }

  /** Adds the area under the in-flight curve from the last change up to `now`. */
  private accrue(now: number): void {
    if (now > this.lastChange) {
      this.inFlightArea += this.inFlight * (now - this.lastChange);
      this.lastChange = now;
    }
  }

  /** Starts a request; returns the start reading to hand back to `end`. */
  begin(): number {
    const now = this.now();
    this.accrue(now);
    this.inFlight++;
    return now;
  }

  /** Finishes a request started at `start`. */
  end(start: number, failed: boolean): void {
    const now = this.now();
    const ms = now - start;
    const bucket = latencyBucketIndex(ms);
    this.accrue(now);
    this.inFlight--;
    this.requests++;
    this.totalRequests++;
    this.totalMs += ms;
    (this.buckets[bucket] as number)++;
    (this.totalBuckets[bucket] as number)++;
    if (failed) {
      this.errors++;
      this.totalErrors++;
    }
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Resolves when nothing is in flight (at once if already so). */
  whenIdle(): Promise<void> {
    if (this.inFlight <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Totals since start (for /metrics); Prometheus reads these instead of being updated per request. */
  totals(): LoadTotals {
    return { requests: this.totalRequests, errors: this.totalErrors, buckets: this.totalBuckets, sumMs: this.totalMs };
  }

  /** Takes the counts accumulated since the previous call and starts a new interval. */
  takeInterval(): IntervalLoad {
    const buckets = this.buckets;
    const now = this.now();
    this.accrue(now);
    const span = now - this.intervalStart;
    const inFlightAvg = span > 0 ? this.inFlightArea / span : Math.max(0, this.inFlight);
    this.inFlightArea = 0;
    this.intervalStart = now;
    const load: IntervalLoad = {
      inFlightAvg: Math.max(0, inFlightAvg),
      requests: this.requests,
      errors: this.errors,
      latencyBuckets: buckets,
    };
    const p50 = latencyQuantile(buckets, 0.5);
    const p99 = latencyQuantile(buckets, 0.99);
    if (p50 !== undefined) load.latencyP50Ms = p50;
    if (p99 !== undefined) load.latencyP99Ms = p99;
    this.requests = 0;
    this.errors = 0;
    this.buckets = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
    return load;
  }
}
