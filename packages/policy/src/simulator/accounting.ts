/** What a simulation measures: per-second tallies, the timeline (bucketed) and the summary. */
import type { SimulationModel } from './model.js';

export interface TimelinePoint {
  /** Seconds from the start (bucket start). */
  t: number;
  /** Mean arrival rate, req/s. */
  load: number;
  /** Mean capacity of ready replicas, req/s. */
  capacity: number;
  /** Replicas (including starting ones) at the end of the bucket. */
  replicas: number;
  /** Mean ready replicas. */
  ready: number;
  /** Worst p95 latency in the bucket, ms. */
  latencyP95Ms: number;
  dropped: number;
  sloViolationSeconds: number;
}

export interface ScaleEventRecord {
  t: number;
  from: number;
  to: number;
  panicking: boolean;
}

export interface SimulationSummary {
  durationS: number;
  totalRequests: number;
  droppedRequests: number;
  /** Sum over seconds of replicas running: starting ones and draining ones (`drainMs`) included, they cost money too. */
  replicaSeconds: number;
  /** Seconds with p95 above the SLO or any dropped request. */
  sloViolationSeconds: number;
  scaleEvents: number;
  scaleUps: number;
  scaleDowns: number;
  /** Direction changes between consecutive scale events. */
  reversals: number;
  /** Reversals less than 300 s after the previous, opposite event (flapping). */
  flaps: number;
  peakReplicas: number;
  meanReplicas: number;
  /** Episodes where ready capacity fell below the arrival rate. */
  surges: number;
  /** Seconds until ready capacity caught up again, per surge: mean, p95 and max (0 when none). */
  timeToAdequateS: { mean: number; p95: number; max: number };
  /** Mean utilization of ready replicas. */
  meanUtilization: number;
}

/** One simulated second as the tally sees it. */
export interface SecondOutcome {
  t: number;
  /** Arrival rate of the trace, req/s. */
  rate: number;
  arrivals: number;
  ready: number;
  replicas: number;
  utilization: number;
  latencyP95Ms: number;
  dropped: number;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

function finishPoint(p: TimelinePoint, n: number): TimelinePoint {
  const d = Math.max(1, n);
  return { ...p, load: p.load / d, capacity: p.capacity / d, ready: p.ready / d };
}

/** Reversals (direction changes) and flaps (reversals within 300 s) in a sequence of scale events. */
export function countReversals(events: readonly ScaleEventRecord[]): { reversals: number; flaps: number } {
  let reversals = 0;
  let flaps = 0;
  for (let k = 1; k < events.length; k++) {
    const a = events[k - 1] as ScaleEventRecord;
    const b = events[k] as ScaleEventRecord;
    if (Math.sign(a.to - a.from) !== Math.sign(b.to - b.from)) {
      reversals++;
      if (b.t - a.t < 300) flaps++;
    }
  }
  return { reversals, flaps };
}

/** Accumulates every second of a run; `finish()` gives the summary and the timeline. */
export class SimulationTally {
  readonly timeline: TimelinePoint[] = [];
  readonly events: ScaleEventRecord[] = [];
  private readonly bucket: number;
  private cur: TimelinePoint | undefined;
  private totalRequests = 0;
  private dropped = 0;
  private replicaSeconds = 0;
  private violation = 0;
  private peak = 0;
  private utilSum = 0;
  private utilN = 0;
  private inadequateSince = -1;
  private readonly catchUps: number[] = [];

  constructor(
    private readonly model: SimulationModel,
    private readonly durationS: number,
  ) {
    this.bucket = Math.max(1, Math.ceil(durationS / model.timelinePoints));
  }

  scaleEvent(event: ScaleEventRecord): void {
    this.events.push(event);
  }

  second(o: SecondOutcome): void {
    const cap = this.model.replicaCapacityRps;
    this.totalRequests += o.arrivals;
    this.dropped += o.dropped;
    this.replicaSeconds += o.replicas;
    this.peak = Math.max(this.peak, o.replicas);
    const violated = o.latencyP95Ms > this.model.sloP95Ms || o.dropped >= 0.5;
    if (violated) this.violation++;
    if (o.ready > 0) {
      this.utilSum += o.utilization;
      this.utilN++;
    }
    const adequate = o.ready * cap >= o.rate;
    if (!adequate && this.inadequateSince < 0) this.inadequateSince = o.t;
    if (adequate && this.inadequateSince >= 0) {
      this.catchUps.push(o.t - this.inadequateSince);
      this.inadequateSince = -1;
    }
    if (o.t % this.bucket === 0) {
      if (this.cur) this.timeline.push(finishPoint(this.cur, this.bucket));
      this.cur = {
        t: o.t,
        load: 0,
        capacity: 0,
        replicas: 0,
        ready: 0,
        latencyP95Ms: 0,
        dropped: 0,
        sloViolationSeconds: 0,
      };
    }
    const cur = this.cur;
    if (cur) {
      cur.load += o.rate;
      cur.capacity += o.ready * cap;
      cur.ready += o.ready;
      cur.replicas = o.replicas;
      cur.latencyP95Ms = Math.max(cur.latencyP95Ms, o.latencyP95Ms);
      cur.dropped += o.dropped;
      if (violated) cur.sloViolationSeconds++;
    }
  }

  finish(): SimulationSummary {
    const duration = this.durationS;
    if (this.cur) this.timeline.push(finishPoint(this.cur, duration - this.cur.t));
    this.cur = undefined;
    if (this.inadequateSince >= 0) this.catchUps.push(duration - this.inadequateSince);
    this.inadequateSince = -1;
    const events = this.events;
    const sorted = this.catchUps.slice().sort((x, y) => x - y);
    return {
      durationS: duration,
      totalRequests: this.totalRequests,
      droppedRequests: Math.round(this.dropped),
      replicaSeconds: this.replicaSeconds,
      sloViolationSeconds: this.violation,
      scaleEvents: events.length,
      scaleUps: events.filter((e) => e.to > e.from).length,
      scaleDowns: events.filter((e) => e.to < e.from).length,
      ...countReversals(events),
      peakReplicas: this.peak,
      meanReplicas: duration > 0 ? this.replicaSeconds / duration : 0,
      surges: sorted.length,
      timeToAdequateS: {
        mean: sorted.length ? sorted.reduce((s, x) => s + x, 0) / sorted.length : 0,
        p95: quantile(sorted, 0.95),
        max: sorted.length ? (sorted.at(-1) as number) : 0,
      },
      meanUtilization: this.utilN ? this.utilSum / this.utilN : 0,
    };
  }
}

/**
 * How two simulations' figures compare, the same in `shoal simulate --compare` and `npm run bench:scaling`: the
 * first policy's figure divided by the compared policy's (`1.6` = the first costs 1.6 times as much; below 1 it has
 * less). Both 0 is a ratio of 1 (no difference), marked `bothZero`; a figure over a compared 0 is `Infinity`.
 */
export interface FigureRatio {
  value: number;
  bothZero: boolean;
}

export function figureRatio(mine: number, compared: number): FigureRatio {
  if (compared === 0) return { value: mine === 0 ? 1 : Number.POSITIVE_INFINITY, bothZero: mine === 0 };
  return { value: mine / compared, bothZero: false };
}

/** A ratio as printed: `1.624×`, `1× (both 0)`, `∞ (compared 0)`. */
export function formatRatio(r: FigureRatio, digits = 3): string {
  if (r.bothZero) return '1× (both 0)';
  if (!Number.isFinite(r.value)) return '∞ (compared 0)';
  return `${r.value.toFixed(digits)}×`;
}
