import { latencyQuantile } from '@shoal/protocol';

/** When a new version counts as clearly worse than the old one (documented in docs/operations.md). */
export interface ComparisonThresholds {
  /** Requests each version must have served in the compared seconds before any verdict. */
  minRequests: number;
  /** The new error ratio must exceed the old one by at least this much (absolute, 0.05 = 5 points)... */
  maxErrorRatioIncrease: number;
  /** ...and a one-sided two-proportion z-test must give at least this z (3 ≈ 1 false alarm in 740). */
  minZ: number;
  /** The new p95 latency must be at least this many times the old one... */
  latencyRatio: number;
  /** ...and at least this many ms above it. */
  minLatencyIncreaseMs: number;
}

export const DEFAULT_THRESHOLDS: ComparisonThresholds = Object.freeze({
  minRequests: 30,
  maxErrorRatioIncrease: 0.05,
  minZ: 3,
  latencyRatio: 2,
  minLatencyIncreaseMs: 50,
});

/** The part of an agent's report a comparison uses. */
export interface ReportCounts {
  requests: number;
  errors: number;
  latencyBuckets: readonly number[];
  latencyP99Ms?: number;
}

export interface SideSummary {
  requests: number;
  errors: number;
  errorRatio: number;
  /** p95 from the merged latency histograms (or the request-weighted mean of reported p99s when none). */
  latencyP95Ms?: number;
}

export type Verdict = { worse: false; reason?: string } | { worse: true; kind: 'errors' | 'latency'; reason: string };

class Side {
  requests = 0;
  errors = 0;
  buckets: number[] = [];
  p99Weighted = 0;
  p99Weight = 0;

  add(r: ReportCounts): void {
    this.requests += r.requests;
    this.errors += Math.min(r.errors, r.requests);
    for (let i = 0; i < r.latencyBuckets.length; i++) {
      this.buckets[i] = (this.buckets[i] ?? 0) + (r.latencyBuckets[i] as number);
    }
    if (r.latencyP99Ms !== undefined && r.requests > 0) {
      this.p99Weighted += r.latencyP99Ms * r.requests;
      this.p99Weight += r.requests;
    }
  }

  summary(): SideSummary {
    const p95 =
      this.buckets.length > 0
        ? latencyQuantile(this.buckets, 0.95)
        : this.p99Weight > 0
          ? this.p99Weighted / this.p99Weight
          : undefined;
    return {
      requests: this.requests,
      errors: this.errors,
      errorRatio: this.requests > 0 ? this.errors / this.requests : 0,
      ...(p95 !== undefined ? { latencyP95Ms: Math.round(p95 * 10) / 10 } : {}),
    };
  }
}

/**
 * The old and new versions' requests, errors and latency over the same seconds (the rollout adds a report to a
 * side only while both versions have a ready replica taking traffic), and the verdict: the new version is
 * clearly worse when, with at least `minRequests` on each side, its error ratio is higher by
 * `maxErrorRatioIncrease` and by a z of `minZ`, or its p95 latency is `latencyRatio` times the old one and
 * `minLatencyIncreaseMs` above it. Anything short of that is noise, and the rollout goes on.
 */
export class VersionComparison {
  private readonly old = new Side();
  private readonly next = new Side();

  constructor(private readonly thresholds: ComparisonThresholds = DEFAULT_THRESHOLDS) {}

  add(side: 'old' | 'new', report: ReportCounts): void {
    (side === 'old' ? this.old : this.next).add(report);
  }

  summary(): { old: SideSummary; new: SideSummary } {
    return { old: this.old.summary(), new: this.next.summary() };
  }

  verdict(): Verdict {
    const t = this.thresholds;
    const o = this.old.summary();
    const n = this.next.summary();
    if (o.requests < t.minRequests || n.requests < t.minRequests) {
      return {
        worse: false,
        reason: `not enough requests yet (old ${o.requests}, new ${n.requests}, need ${t.minRequests} each)`,
      };
    }
    const increase = n.errorRatio - o.errorRatio;
    if (increase >= t.maxErrorRatioIncrease) {
      const pooled = (o.errors + n.errors) / (o.requests + n.requests);
      const se = Math.sqrt(pooled * (1 - pooled) * (1 / o.requests + 1 / n.requests));
      const z = se > 0 ? increase / se : Infinity;
      if (z >= t.minZ) {
        return {
          worse: true,
          kind: 'errors',
          reason: `error ratio ${pct(n.errorRatio)} (${n.errors}/${n.requests}) vs ${pct(o.errorRatio)} (${o.errors}/${o.requests}) on the old version, z=${z === Infinity ? '∞' : z.toFixed(1)}`,
        };
      }
    }
    if (n.latencyP95Ms !== undefined && o.latencyP95Ms !== undefined) {
      if (
        n.latencyP95Ms >= o.latencyP95Ms * t.latencyRatio &&
        n.latencyP95Ms - o.latencyP95Ms >= t.minLatencyIncreaseMs
      ) {
        return {
          worse: true,
          kind: 'latency',
          reason: `p95 latency ${n.latencyP95Ms} ms vs ${o.latencyP95Ms} ms on the old version`,
        };
      }
    }
    return { worse: false };
  }
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
