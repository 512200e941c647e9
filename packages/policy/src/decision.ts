/**
 * The result of `decide()` and the working set its stages share. Each stage reads the context and updates the
 * sizing; only the final stage builds the `Decision`.
 */
import type { Observation } from './observation.js';
import type { Policy } from './policy.js';
import type { PolicyState } from './state.js';

export interface TargetProposal {
  /** `metric` of the target, or `slo:<metric>`. */
  target: string;
  /** Replicas this target asks for (absent when it failed or has no opinion). */
  replicas?: number;
  /** Current / target ratio. */
  ratio?: number;
  /** Why it failed (no metrics, missing request). */
  error?: string;
}

/** HPA's ScalingLimited reasons: which limit shaped the result. */
export type LimitReason =
  'ScaleUpLimit' | 'TooManyReplicas' | 'ScaleDownLimit' | 'TooFewReplicas' | 'DesiredWithinRange';

export interface Decision {
  /** Replicas to run. */
  desiredReplicas: number;
  /** State to pass to the next call (plain JSON). */
  state: PolicyState;
  /** Human-readable explanation, one line per step that mattered. */
  reasons: string[];
  /** On scale-down: instance ids to drain, best first (`currentReplicas - desiredReplicas` of them). */
  victims?: string[];
  /** Per-target proposals. */
  proposals: TargetProposal[];
  /** The proposal before stabilization and rate limits. */
  recommendation: number;
  /** The minimum in force (minReplicas raised by active schedules). */
  minReplicas: number;
  panicking: boolean;
  /** Which limit shaped the result: HPA's ScalingLimited reasons. */
  limitedBy: LimitReason;
}

/** What every stage of one decision reads (`state`, `reasons` and `proposals` are written as it goes). */
export interface DecideContext {
  readonly policy: Policy;
  readonly observation: Observation;
  /** The state being built for the next decision (a copy of the previous one). */
  readonly state: PolicyState;
  readonly now: number;
  readonly current: number;
  /** minReplicas raised by active schedules. */
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Ready, running, not deleting. */
  readonly readyCount: number;
  /** No demand seen yet (first decision, a lost state, or none with usable metrics so far). */
  readonly fresh: boolean;
  readonly reasons: string[];
  readonly proposals: TargetProposal[];
}

/** The running proposal, passed from stage to stage. */
export interface Sizing {
  /** Replicas proposed so far (-1: no usable metric). */
  proposal: number;
  /** Unrounded replicas of demand behind the largest target proposal. */
  demand: number;
  /** The unrounded demand the proposal was sized from (headroom is added to it, not to the count). */
  sizedDemand: number;
  /** Targets that failed (they block a scale-down). */
  failed: number;
  /** The SLO asks to hold the current count. */
  hold: boolean;
  /** A panic is on (over the threshold or in its hold phase). */
  panicking: boolean;
  /** Demand is over the panic threshold now (not just inside a panic's hold). */
  panicOver: boolean;
  /** Replicas the panic window's average demand asks for. */
  panicNeed: number;
}

/** A number for a reason line: integers as they are, others to 3 decimals without trailing zeros. */
export function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
}
