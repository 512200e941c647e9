import type { Instance } from '@shoal/core';

/**
 * Server-reported load of one endpoint, as a backend sends it (e.g. in ORCA trailers). Not to be confused with
 * `@shoal/protocol`'s `LoadReport`, the agent's report to the coordinator.
 */
export interface EndpointLoad {
  /** Application utilization, 0..1 (may exceed 1 when over capacity). */
  utilization?: number;
  /** Queries per second the backend served. */
  rps?: number;
  /** Errors per second the backend served. */
  eps?: number;
  /** CPU utilization, 0..1 per the whole machine; used when `utilization` is not reported. */
  cpu?: number;
}

/**
 * What a strategy sees of an endpoint: read-only, live (the numbers change as calls start and finish). Strategies
 * read these fields on the hot path; the balancer alone writes them.
 */
export interface Endpoint {
  readonly id: string;
  readonly instance: Instance;
  /** The instance's static weight (Instance.weight). */
  readonly weight: number;
  readonly zone: string | undefined;
  /** Calls picked and not yet completed (or swept). */
  readonly inFlight: number;
  /** Peak-sensitive EWMA of latency in ms as of `ewmaStampMs`; meaningful once `samples > 0`. */
  readonly ewmaMs: number;
  /** Balancer-monotonic time (ms) of the last latency observation. */
  readonly ewmaStampMs: number;
  /** Completed calls observed (successes and failures). */
  readonly samples: number;
  readonly failures: number;
  readonly consecutiveFailures: number;
  /**
   * Slow-start weight multiplier in (0, 1]; 1 when not warming up (and always 1 for strategies that declare
   * `slowStart: false`). Strategies multiply the endpoint's weight by it.
   */
  readonly slowStartFactor: number;
  readonly ejected: boolean;
  /** False while marked unavailable through `Balancer.setAvailable()`. */
  readonly available: boolean;
  /** Last reported load; NaN where not reported. */
  readonly utilization: number;
  readonly cpu: number;
  readonly rps: number;
  readonly eps: number;
  /** Balancer-monotonic time of the last load report (NaN before the first). */
  readonly loadUpdatedMs: number;
  /** Start of the current run of uninterrupted load reports (gRPC A58 `non_empty_since`); NaN when none. */
  readonly loadNonEmptySinceMs: number;
}

/** A point-in-time copy of an endpoint's state, from `Balancer.endpoints()`. */
export interface EndpointSnapshot {
  readonly instance: Instance;
  readonly inFlight: number;
  /** Peak-sensitive EWMA latency in ms, decayed to now; undefined before the first completed call. */
  readonly ewmaMs: number | undefined;
  readonly requests: number;
  readonly failures: number;
  readonly consecutiveFailures: number;
  /** Completed calls and failures in the current and the previous outlier-detection interval (10 s by default). */
  readonly recentRequests: number;
  readonly recentFailures: number;
  readonly ejected: boolean;
  /** False while marked unavailable through `Balancer.setAvailable()`. */
  readonly available: boolean;
  /** Balancer-monotonic time at which an ejected endpoint returns. */
  readonly ejectedUntilMs: number | undefined;
  /** Times ejected so far (drives the growing ejection time). */
  readonly ejections: number;
  readonly slowStartFactor: number;
  readonly load: Readonly<EndpointLoad> | undefined;
}

/** The balancer's mutable per-endpoint state. Internal: strategies see it through `Endpoint`. */
export class EndpointState implements Endpoint {
  // Hot fields first: V8 lays fields out in declaration order, so what a pick reads shares a cache line.
  inFlight = 0;
  samples = 0;
  ewmaMs = 0;
  ewmaStampMs = 0;
  slowStartFactor = 1;
  weight: number;
  readonly id: string;
  instance: Instance;
  zone: string | undefined;
  /** In-flight calls picked in the current / previous sweep generation (the sweep expires older ones). */
  inFlightCur = 0;
  inFlightPrev = 0;
  failures = 0;
  consecutiveFailures = 0;
  /** Outlier-detection interval counters. */
  windowRequests = 0;
  windowFailures = 0;
  prevWindowRequests = 0;
  prevWindowFailures = 0;
  slowStartSinceMs = 0;
  ejected = false;
  available = true;
  ejectedUntilMs = 0;
  ejectionMultiplier = 0;
  ejections = 0;
  removed = false;
  utilization = NaN;
  cpu = NaN;
  rps = NaN;
  eps = NaN;
  loadUpdatedMs = NaN;
  loadNonEmptySinceMs = NaN;

  constructor(instance: Instance) {
    this.weight = instance.weight ?? 1;
    this.id = instance.id;
    this.instance = instance;
    this.zone = instance.zone;
  }

  setInstance(instance: Instance): void {
    this.instance = instance;
    this.weight = instance.weight ?? 1;
    this.zone = instance.zone;
  }

  /**
   * Peak-sensitive EWMA (Finagle/tower/Linkerd). Reading the estimate decays it, as in Finagle's `PeakEwma` (its
   * load read observes 0) and tower's `decay()`: this call's own pick read it when the call started, so the
   * estimate is first decayed to then (`nowMs - latencyMs`). A call slower than that resets the estimate to it;
   * a faster one blends in with weight `1 - e^(-dt/decayMs)` (dt since the last read or observation), but at
   * least `sampleWeight` (0 = time only), so that at high call rates a single peak is forgotten over about
   * `1 / sampleWeight` calls, not `decayMs`. For a sequential caller this is exactly Finagle's estimate; with
   * calls overlapping, reads by other picks during this call would decay it further by at most latency/decayMs.
   */
  observeLatency(latencyMs: number, nowMs: number, decayMs: number, sampleWeight = 0): void {
    if (this.samples === 0) {
      this.ewmaMs = latencyMs;
    } else {
      const readAt = nowMs - latencyMs;
      if (readAt > this.ewmaStampMs) {
        this.ewmaMs *= Math.exp((this.ewmaStampMs - readAt) / decayMs);
        this.ewmaStampMs = readAt;
      }
      if (latencyMs > this.ewmaMs) {
        this.ewmaMs = latencyMs;
      } else {
        const dt = nowMs - this.ewmaStampMs;
        let w = dt > 0 ? Math.exp(-dt / decayMs) : 1;
        if (w > 1 - sampleWeight) w = 1 - sampleWeight;
        this.ewmaMs = this.ewmaMs * w + latencyMs * (1 - w);
      }
    }
    if (nowMs > this.ewmaStampMs) this.ewmaStampMs = nowMs;
    this.samples++;
  }

  snapshot(nowMs: number, decayMs: number): EndpointSnapshot {
    const dt = nowMs - this.ewmaStampMs;
    const hasLoad = !Number.isNaN(this.loadUpdatedMs);
    const load: EndpointLoad = {};
    if (!Number.isNaN(this.utilization)) load.utilization = this.utilization;
    if (!Number.isNaN(this.rps)) load.rps = this.rps;
    if (!Number.isNaN(this.eps)) load.eps = this.eps;
    if (!Number.isNaN(this.cpu)) load.cpu = this.cpu;
    return Object.freeze({
      instance: this.instance,
      inFlight: this.inFlight,
      ewmaMs: this.samples === 0 ? undefined : this.ewmaMs * (dt > 0 ? Math.exp(-dt / decayMs) : 1),
      requests: this.samples,
      failures: this.failures,
      consecutiveFailures: this.consecutiveFailures,
      recentRequests: this.windowRequests + this.prevWindowRequests,
      recentFailures: this.windowFailures + this.prevWindowFailures,
      ejected: this.ejected,
      available: this.available,
      ejectedUntilMs: this.ejected ? this.ejectedUntilMs : undefined,
      ejections: this.ejections,
      slowStartFactor: this.slowStartFactor,
      load: hasLoad ? Object.freeze(load) : undefined,
    });
  }
}
