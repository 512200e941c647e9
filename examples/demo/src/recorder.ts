/**
 * What the demo measures at the client: every call's outcome and latency, folded into one sample per tick
 * (request rate, p50/p99, errors), plus the replica counts and the coordinator's decisions. The terminal view,
 * the SVG chart and the summary all read from here.
 */
import type { PhaseName } from './scenario.js';

export interface Sample {
  /** Milliseconds since the run started. */
  readonly tMs: number;
  readonly phase: PhaseName;
  /** Offered load at that moment. */
  readonly targetRps: number;
  /** Completed calls per second over the last tick. */
  readonly rps: number;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  /** Failed calls during the last tick. */
  readonly errors: number;
  /** Healthy instances in Consul, as the client sees them. */
  readonly replicas: number;
  /** The coordinator's desired replica count. */
  readonly desired: number | undefined;
}

export interface DecisionRecord {
  readonly tMs: number;
  readonly from: number;
  readonly to: number;
  readonly reasons: readonly string[];
}

export interface Totals {
  requests: number;
  succeeded: number;
  failed: number;
  /** Failure counts by gRPC status name or error code. */
  failures: Record<string, number>;
}

/** Nearest-rank quantile of an ascending array. */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

export class Recorder {
  readonly samples: Sample[] = [];
  readonly decisions: DecisionRecord[] = [];
  readonly totals: Totals = { requests: 0, succeeded: 0, failed: 0, failures: {} };
  /** The latest failure messages (bounded), for the terminal view and the summary. */
  readonly lastFailures: string[] = [];
  /** Every successful call's latency, for the run's overall quantiles. */
  readonly allLatencies: number[] = [];
  private windowLatencies: number[] = [];
  private windowCompleted = 0;
  private windowErrors = 0;
  private lastTickMs = 0;

  recordSuccess(latencyMs: number): void {
    this.totals.requests++;
    this.totals.succeeded++;
    this.windowCompleted++;
    this.windowLatencies.push(latencyMs);
    this.allLatencies.push(latencyMs);
  }

  recordFailure(kind: string, message: string): void {
    this.totals.requests++;
    this.totals.failed++;
    this.windowCompleted++;
    this.windowErrors++;
    this.totals.failures[kind] = (this.totals.failures[kind] ?? 0) + 1;
    this.lastFailures.push(`${kind}: ${message}`);
    if (this.lastFailures.length > 5) this.lastFailures.shift();
  }

  recordDecision(decision: DecisionRecord): void {
    this.decisions.push(decision);
  }

  /** Closes the current window into a sample. */
  tick(at: {
    tMs: number;
    phase: PhaseName;
    targetRps: number;
    replicas: number;
    desired: number | undefined;
  }): Sample {
    const spanMs = Math.max(1, at.tMs - this.lastTickMs);
    const sorted = this.windowLatencies.sort((a, b) => a - b);
    const sample: Sample = Object.freeze({
      tMs: at.tMs,
      phase: at.phase,
      targetRps: at.targetRps,
      rps: (this.windowCompleted * 1000) / spanMs,
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      errors: this.windowErrors,
      replicas: at.replicas,
      desired: at.desired,
    });
    this.samples.push(sample);
    this.windowLatencies = [];
    this.windowCompleted = 0;
    this.windowErrors = 0;
    this.lastTickMs = at.tMs;
    return sample;
  }
}
