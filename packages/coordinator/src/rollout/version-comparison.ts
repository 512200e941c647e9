import { latencyBucketIndex, latencyQuantile, LATENCY_BUCKETS_MS } from '@shoal/protocol';
import { binomialUpperBound, binomialUpperTail } from './binomial.js';

/** When a new version counts as clearly worse than the old one (documented in docs/operations.md). */
export interface ComparisonThresholds {
  /** Requests each version must have served before the latency rule judges (the error test needs no minimum). */
  minRequests: number;
  /** The new error ratio must exceed the old one by at least this much (absolute, 0.05 = 5 points)... */
  maxErrorRatioIncrease: number;
  /**
   * ...and the exact test must reject at this level: the new version's errors are at most this likely even at the
   * old version's (1 − alpha) upper bound. Equal versions are judged worse with probability at most 2 × alpha at
   * one look. 0 turns error rollbacks off, and latency ones where reports carry histograms.
   */
  alpha: number;
  /** The new p95 latency must be at least this many times the old one... */
  latencyRatio: number;
  /** ...and at least this many ms above it. */
  minLatencyIncreaseMs: number;
}

export const DEFAULT_THRESHOLDS: ComparisonThresholds = Object.freeze({
  minRequests: 30,
  maxErrorRatioIncrease: 0.05,
  alpha: 0.001,
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

  /** Timed requests, and those in buckets above the one holding `ms` (undefined without histograms). */
  slowerThan(ms: number): { requests: number; errors: number } | undefined {
    if (this.buckets.length === 0) return undefined;
    const above = latencyBucketIndex(ms);
    let requests = 0;
    let slow = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      requests += this.buckets[i] ?? 0;
      if (i > above) slow += this.buckets[i] ?? 0;
    }
    return { requests, errors: slow };
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

/** The error test never judges on fewer new-version errors than this (with the defaults it needs 3 anyway). */
export const MIN_ERRORS = 3;

/** What the exact error test found. */
export interface ExactErrorTest {
  /** The old version's error ratio bound: above it with probability at most alpha (when tested). */
  oldUpperBound?: number;
  /** P(at least the new version's errors in its requests) if its error ratio were `oldUpperBound`. */
  pValue: number;
  /** pValue ≤ alpha, the observed ratio up by `margin`, and at least MIN_ERRORS errors. */
  worse: boolean;
}

/**
 * The exact error test, for any number of requests: is the new version's error count implausible even if its
 * true error ratio were the highest the old version's record allows? The old side's one-sided (1 − alpha)
 * Clopper–Pearson upper bound u, and the binomial tail P(X ≥ errors | requests, u) of the new side. Worse when
 * that tail is ≤ alpha, the observed ratio is up by `margin` (a difference worth a rollback) and the new side has
 * at least MIN_ERRORS errors. For two versions with the same true ratio p, either u < p (probability ≤ alpha) or
 * the tail at u is at most the tail at p (≤ alpha with probability ≤ alpha): at most 2 × alpha at one look.
 */
export function exactErrorTest(
  old: { requests: number; errors: number },
  next: { requests: number; errors: number },
  margin: number,
  alpha: number,
): ExactErrorTest {
  const oldRatio = old.requests > 0 ? old.errors / old.requests : 0;
  const up = next.requests > 0 && next.errors / next.requests - oldRatio >= margin;
  // Nothing to test: no (big enough) difference, too few errors, no old record, or the test turned off.
  if (!(alpha > 0) || !up || next.errors < MIN_ERRORS || old.requests === 0) return { pValue: 1, worse: false };
  const oldUpperBound = binomialUpperBound(old.errors, old.requests, alpha);
  const pValue = binomialUpperTail(next.errors, next.requests, oldUpperBound);
  return { oldUpperBound, pValue, worse: pValue <= alpha };
}

/**
 * The old and new versions' requests, errors and latency over the same seconds (the rollout adds a report to a
 * side only while both versions have a ready replica taking traffic), and the verdict: the new version is
 * clearly worse when its error ratio is up by `maxErrorRatioIncrease` and the exact test rejects at `alpha` (on
 * any number of requests: a version failing half its calls is judged on about eight), or when, with
 * `minRequests` on each side, its p95 latency is `latencyRatio` times the old one and `minLatencyIncreaseMs` above
 * it and its share of slow calls passes the same test. Anything short of that is noise, and the rollout goes on.
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
    if (o.requests === 0 || n.requests === 0) {
      return { worse: false, reason: `not enough requests yet (old ${o.requests}, new ${n.requests})` };
    }
    const versus = `error ratio ${pct(n.errorRatio)} (${n.errors}/${n.requests}) vs ${pct(o.errorRatio)} (${o.errors}/${o.requests}) on the old version`;
    const exact = exactErrorTest(o, n, t.maxErrorRatioIncrease, t.alpha);
    if (exact.worse) {
      return {
        worse: true,
        kind: 'errors',
        reason: `${versus}: P=${exact.pValue.toPrecision(2)} ≤ ${t.alpha} even at its bound ${pct(exact.oldUpperBound ?? 1)}`,
      };
    }
    const enough = o.requests >= t.minRequests && n.requests >= t.minRequests;
    const latency = enough ? this.latencyVerdict(o, n) : undefined;
    if (latency) return latency;
    return {
      worse: false,
      reason: `no clear regression: ${versus}${exact.pValue < 1 ? ` (P=${exact.pValue.toPrecision(2)})` : ''}${enough ? '' : `; latency is compared from ${t.minRequests} requests each`}`,
    };
  }

  /**
   * The latency rule: the new p95 is `latencyRatio` times the old one and `minLatencyIncreaseMs` above it, and —
   * with histograms — that is no handful of slow calls (a cold start): the share of new calls slower than the old
   * p95's bucket must be up by `maxErrorRatioIncrease` and pass the same exact test as errors.
   */
  private latencyVerdict(o: SideSummary, n: SideSummary): Verdict | undefined {
    const t = this.thresholds;
    if (n.latencyP95Ms === undefined || o.latencyP95Ms === undefined) return undefined;
    if (n.latencyP95Ms < o.latencyP95Ms * t.latencyRatio || n.latencyP95Ms - o.latencyP95Ms < t.minLatencyIncreaseMs) {
      return undefined;
    }
    const reason = `p95 latency ${n.latencyP95Ms} ms vs ${o.latencyP95Ms} ms on the old version`;
    const oldSlow = this.old.slowerThan(o.latencyP95Ms);
    const newSlow = this.next.slowerThan(o.latencyP95Ms);
    // Reports without histograms (only a p99): the p95s alone.
    if (oldSlow === undefined || newSlow === undefined) return { worse: true, kind: 'latency', reason };
    const slow = exactErrorTest(oldSlow, newSlow, t.maxErrorRatioIncrease, t.alpha);
    if (!slow.worse) return undefined;
    const bound = LATENCY_BUCKETS_MS[latencyBucketIndex(o.latencyP95Ms)] ?? o.latencyP95Ms;
    return {
      worse: true,
      kind: 'latency',
      reason: `${reason}; ${newSlow.errors}/${newSlow.requests} calls over ${bound} ms vs ${oldSlow.errors}/${oldSlow.requests}, P=${slow.pValue.toPrecision(2)}`,
    };
  }
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
