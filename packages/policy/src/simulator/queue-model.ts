/**
 * The queueing model of one service: a pool of identical replicas behind a balancer that spreads load
 * evenly. Each replica serves `concurrency` requests at a time with a mean service time; the pool is an
 * M/G/c queue (c = ready replicas × concurrency) whose waiting time follows Erlang C with the
 * Allen–Cunneen correction for the service-time variability, plus a fluid backlog when arrivals exceed
 * capacity. Requests that would wait longer than `timeoutMs` are dropped.
 */
import { LATENCY_BUCKETS_MS } from '@shoal/protocol';

export type ServiceTimeDistribution = 'exponential' | 'lognormal' | 'constant';

/** Erlang C: probability an arrival waits, for c servers at offered load a = λ/μ (a < c). */
export function erlangC(c: number, a: number): number {
  if (a <= 0) return 0;
  if (a >= c) return 1;
  // Erlang B by recursion (stable), then C from B.
  let b = 1;
  for (let k = 1; k <= c; k++) b = (a * b) / (k + a * b);
  const rho = a / c;
  return b / (1 - rho + rho * b);
}

/** Service-time coefficient of variation of a distribution. */
export function serviceCv(distribution: ServiceTimeDistribution, cv: number): number {
  if (distribution === 'exponential') return 1;
  if (distribution === 'constant') return 0;
  return cv;
}

/** The p-quantile of the service time (mean `meanMs`). */
export function serviceQuantileMs(
  distribution: ServiceTimeDistribution,
  meanMs: number,
  cv: number,
  p: number,
): number {
  if (distribution === 'constant') return meanMs;
  if (distribution === 'exponential') return -meanMs * Math.log(1 - p);
  // Lognormal with the given mean and cv.
  const sigma2 = Math.log(1 + cv * cv);
  const mu = Math.log(meanMs) - sigma2 / 2;
  const z = p >= 0.99 ? 2.326 : p >= 0.95 ? 1.645 : p >= 0.5 ? 0 : -1;
  return Math.exp(mu + Math.sqrt(sigma2) * z);
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26, error < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + y) / 2 : (1 - y) / 2;
}

/** P(service time <= x ms). */
function serviceCdf(distribution: ServiceTimeDistribution, meanMs: number, cv: number, x: number): number {
  if (x <= 0) return 0;
  if (distribution === 'constant') return x >= meanMs ? 1 : 0;
  if (distribution === 'exponential') return 1 - Math.exp(-x / meanMs);
  const sigma2 = Math.log(1 + cv * cv);
  const mu = Math.log(meanMs) - sigma2 / 2;
  return normalCdf((Math.log(x) - mu) / Math.sqrt(sigma2));
}

/**
 * Share of completions per latency bucket (`LATENCY_BUCKETS_MS` bounds, then the overflow bucket): the latency is
 * the backlog delay plus the service time plus the Erlang-C wait (none with probability 1 − pw, else exponential
 * with rate `waitRate` per ms), integrated numerically per bound.
 */
export function latencyShares(
  bounds: readonly number[],
  p: QueueParams,
  pw: number,
  waitRatePerMs: number,
  delayMs: number,
): number[] {
  const cdf = (x: number): number => {
    const y = x - delayMs;
    if (y <= 0) return 0;
    const direct = serviceCdf(p.distribution, p.serviceTimeMs, p.cv, y);
    if (pw <= 0 || !(waitRatePerMs > 0) || !Number.isFinite(waitRatePerMs)) return direct;
    // ∫_0^y θ e^{−θw} F_S(y − w) dw by Simpson's rule on 24 intervals.
    const n = 24;
    const h = y / n;
    let sum = 0;
    for (let k = 0; k <= n; k++) {
      const w = k * h;
      const v = waitRatePerMs * Math.exp(-waitRatePerMs * w) * serviceCdf(p.distribution, p.serviceTimeMs, p.cv, y - w);
      sum += (k === 0 || k === n ? 1 : k % 2 === 1 ? 4 : 2) * v;
    }
    return (1 - pw) * direct + pw * Math.min(1, (sum * h) / 3);
  };
  const out: number[] = [];
  let prev = 0;
  for (const b of bounds) {
    // A request that would wait past the timeout is dropped, never completed: completions end by the timeout.
    const c = b >= p.timeoutMs ? 1 : Math.max(prev, Math.min(1, cdf(b)));
    out.push(c - prev);
    prev = c;
  }
  out.push(1 - prev);
  return out;
}

export interface QueueState {
  /** Requests waiting beyond what the servers absorb (fluid backlog). */
  backlog: number;
}

export interface SecondResult {
  served: number;
  dropped: number;
  /** Busy fraction of the ready replicas, 0..1. */
  utilization: number;
  /** Requests in service + waiting, per ready replica. */
  inFlightPerReplica: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
  latencyMeanMs: number;
  /** Share of this step's completions per latency bucket (`LATENCY_BUCKETS_MS`, then overflow). */
  latencyShares: number[];
}

export interface QueueParams {
  concurrency: number;
  serviceTimeMs: number;
  distribution: ServiceTimeDistribution;
  cv: number;
  timeoutMs: number;
}

/**
 * Results of one-second steps that began with no backlog, by ready replicas and arrivals: such a step depends on
 * nothing else (for one `QueueParams`), so a long trace computes each combination once. Callers treat the results
 * as read-only. Keep one cache per `QueueParams`.
 */
export class QueueStepCache {
  private readonly results = new Map<number, { result: SecondResult; backlog: number }>();

  constructor(private readonly maxEntries = 200_000) {}

  /** The key of a step, or undefined when it is not cacheable. */
  key(q: QueueState, ready: number, arrivals: number, dtS: number): number | undefined {
    if (q.backlog !== 0 || dtS !== 1) return undefined;
    if (!Number.isInteger(ready) || !Number.isInteger(arrivals) || ready < 0 || arrivals < 0) return undefined;
    if (ready >= 1_000_000 || arrivals >= 1_000_000_000) return undefined;
    return ready * 1_000_000_000 + arrivals;
  }

  get(key: number): { result: SecondResult; backlog: number } | undefined {
    return this.results.get(key);
  }

  set(key: number, result: SecondResult, backlog: number): void {
    if (this.results.size >= this.maxEntries) this.results.clear();
    this.results.set(key, { result, backlog });
  }
}

/**
 * Advances the pool by `dtS` seconds with `arrivals` requests and `ready` replicas. With a `cache`, a step that
 * starts with no backlog is computed once per (ready, arrivals): the same numbers, bit for bit, and the same
 * result object (read-only) each time.
 */
export function stepQueue(
  q: QueueState,
  p: QueueParams,
  ready: number,
  arrivals: number,
  dtS: number,
  cache?: QueueStepCache,
): SecondResult {
  const key = cache?.key(q, ready, arrivals, dtS);
  if (key === undefined) return computeStep(q, p, ready, arrivals, dtS);
  const hit = (cache as QueueStepCache).get(key);
  if (hit) {
    q.backlog = hit.backlog;
    return hit.result;
  }
  const result = computeStep(q, p, ready, arrivals, dtS);
  (cache as QueueStepCache).set(key, result, q.backlog);
  return result;
}

function computeStep(q: QueueState, p: QueueParams, ready: number, arrivals: number, dtS: number): SecondResult {
  const muPerSlot = 1000 / p.serviceTimeMs; // requests per second per concurrency slot
  const c = ready * p.concurrency;
  const capacity = c * muPerSlot * dtS; // requests the pool can finish in dt
  const timeoutMs = p.timeoutMs;
  if (ready === 0 || capacity <= 0) {
    const dropped = arrivals + q.backlog;
    q.backlog = 0;
    return {
      served: 0,
      dropped,
      utilization: 0,
      inFlightPerReplica: 0,
      latencyP95Ms: timeoutMs,
      latencyP99Ms: timeoutMs,
      latencyMeanMs: timeoutMs,
      latencyShares: latencyShares(LATENCY_BUCKETS_MS, p, 1, 0, timeoutMs),
    };
  }
  const offered = q.backlog + arrivals;
  const served = Math.min(offered, capacity);
  let backlog = offered - served;
  // Requests that would wait longer than the timeout are dropped (the backlog drains at `capacity / dt`).
  const maxBacklog = (capacity / dtS) * (timeoutMs / 1000);
  let dropped = 0;
  if (backlog > maxBacklog) {
    dropped = backlog - maxBacklog;
    backlog = maxBacklog;
  }
  q.backlog = backlog;
  const lambda = arrivals / dtS;
  const a = lambda / muPerSlot; // offered load in servers
  const cv = serviceCv(p.distribution, p.cv);
  const rho = Math.min(a / c, 0.999);
  // Stationary waiting time (Erlang C, Allen–Cunneen), capped at the timeout.
  const pw = erlangC(c, Math.min(a, 0.999 * c));
  const drain = c * muPerSlot * (1 - rho); // 1/s
  const corr = (1 + cv * cv) / 2;
  const waitQuantile = (q95: number): number => (pw > 1 - q95 ? (corr * Math.log(pw / (1 - q95))) / drain : 0);
  const backlogDelayS = backlog / (c * muPerSlot);
  const s95 = serviceQuantileMs(p.distribution, p.serviceTimeMs, p.cv, 0.95);
  const s99 = serviceQuantileMs(p.distribution, p.serviceTimeMs, p.cv, 0.99);
  const p95 = Math.min(timeoutMs, s95 + 1000 * (waitQuantile(0.95) + backlogDelayS));
  const p99 = Math.min(timeoutMs, s99 + 1000 * (waitQuantile(0.99) + backlogDelayS));
  const meanWaitS = (corr * pw) / drain + backlogDelayS;
  const utilization = Math.min(1, served / capacity);
  const inService = utilization * c;
  const waiting = backlog + (lambda * corr * pw) / drain;
  return {
    served,
    dropped,
    utilization,
    inFlightPerReplica: (inService + waiting) / ready,
    latencyP95Ms: p95,
    latencyP99Ms: p99,
    latencyMeanMs: Math.min(timeoutMs, p.serviceTimeMs + 1000 * meanWaitS),
    latencyShares: latencyShares(LATENCY_BUCKETS_MS, p, pw, drain / corr / 1000, 1000 * backlogDelayS),
  };
}
