/**
 * The per-service controller: what runs around `decide()` in the coordinator and in the simulator alike, with no
 * I/O. It observes a `ServiceWindow` of agent reports, keeps the policy state between decisions, applies the leadership guard (after taking over, a scale-down
 * waits for one scale-down stabilization window of fresh data, so a new leader never removes capacity on the
 * strength of an empty window) and returns the decision record the caller applies.
 */
import type { Decision } from './decision.js';
import { decide } from './decide.js';
import type { Observation } from './observation.js';
import { resolvePolicy } from './policy.js';
import type { Policy, PolicyInput } from './policy.js';
import type { PolicyState } from './state.js';
import type { ServiceWindow } from './service-window.js';

/** One step of the controller: what to do, and why. */
export interface ControllerStep {
  /** Decision time (the observation's `now`). */
  atMs: number;
  currentReplicas: number;
  /** Replicas to run (after the leadership guard). */
  desiredReplicas: number;
  /** What the policy recommended before stabilization and limits. */
  recommendation: number;
  /** Instance ids to drain on a scale-down. */
  victims?: string[];
  reasons: string[];
  limitedBy: Decision['limitedBy'];
  panicking: boolean;
  /** The scale-down was held by the leadership guard. */
  held: boolean;
  /** The engine's own decision, before the guard. */
  decision: Decision;
}

export interface ControllerOptions {
  policy: Policy | PolicyInput;
}

export class ServiceAutoscaler {
  private policyValue: Policy;
  private stateValue: PolicyState | undefined;
  private leadingSinceMs: number | undefined;

  constructor(options: ControllerOptions) {
    this.policyValue = resolvePolicy(options.policy);
  }

  get policy(): Policy {
    return this.policyValue;
  }

  /** The state to persist (plain JSON), undefined before the first decision of a fresh start. */
  get state(): PolicyState | undefined {
    return this.stateValue;
  }

  /** Swaps in a reloaded policy; the state carries over. */
  setPolicy(policy: Policy | PolicyInput): void {
    this.policyValue = resolvePolicy(policy);
  }

  /**
   * Starts deciding at `nowMs`: resumes `saved` (the state persisted by the previous leader, if any) or starts
   * fresh. Either way scale-down waits for one scale-down stabilization window from here.
   */
  lead(nowMs: number, saved?: PolicyState): void {
    this.leadingSinceMs = nowMs;
    if (saved !== undefined) this.stateValue = saved;
  }

  /** Milliseconds of fresh data a scale-down still waits for at `nowMs` (0: none). */
  holdRemainingMs(nowMs: number): number {
    if (this.leadingSinceMs === undefined) return 0;
    const holdMs = this.policyValue.behavior.scaleDown.stabilizationWindowSeconds * 1000;
    return Math.max(0, holdMs - (nowMs - this.leadingSinceMs));
  }

  /**
   * What the loop decides on at `nowMs`: the window's averages over its reports. Silent instances beyond the
   * `currentReplicas` the actuator runs are forgotten first; the rest stay listed without metrics (missing, HPA
   * rules). The coordinator and the simulator both observe through here.
   */
  observe(window: ServiceWindow, nowMs: number, currentReplicas: number): Observation {
    window.prune(nowMs, currentReplicas);
    return window.observe(nowMs, currentReplicas);
  }

  /**
   * One decision: `decide()` on the observation, then the leadership guard. Keeps the state for the next step.
   * Throws `InvalidArgumentError` (from `decide()`) on a malformed observation, keeping the previous state.
   */
  step(observation: Observation): ControllerStep {
    const previous = this.stateValue;
    const decision = decide(this.policyValue, observation, previous);
    const now = observation.now;
    const current = observation.currentReplicas;
    let desired = decision.desiredReplicas;
    const reasons = [...decision.reasons];
    let victims = decision.victims;
    let state = decision.state;
    let held = false;
    if (desired < current && this.holdRemainingMs(now) > 0) {
      const since = this.leadingSinceMs as number;
      const holdMs = this.policyValue.behavior.scaleDown.stabilizationWindowSeconds * 1000;
      reasons.push(
        `holding scale-down: ${Math.round((now - since) / 1000)} s of fresh data since taking over, need ${Math.round(holdMs / 1000)} s`,
      );
      desired = current;
      victims = undefined;
      held = true;
      // The engine recorded a scale-down event that is not happening.
      state = { ...decision.state, scaleDownEvents: previous?.scaleDownEvents.slice() ?? [] };
    }
    this.stateValue = state;
    return {
      atMs: now,
      currentReplicas: current,
      desiredReplicas: desired,
      recommendation: decision.recommendation,
      reasons,
      limitedBy: decision.limitedBy,
      panicking: decision.panicking,
      held,
      decision,
      ...(victims && victims.length > 0 ? { victims } : {}),
    };
  }
}
