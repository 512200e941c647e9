/**
 * HPA `behavior`: stabilization windows and Pods/Percent rate policies, as in kubernetes/kubernetes
 * `pkg/controller/podautoscaler/horizontal.go` (`stabilizeRecommendationWithBehaviors`,
 * `convertDesiredReplicasWithBehaviorRate`, `calculateScaleUpLimitWithScalingRules`,
 * `calculateScaleDownLimitWithBehaviors`) with the defaults of `pkg/apis/autoscaling/v2/defaults.go`.
 */
import { checkObject } from './check.js';
import { assertInteger, assertOneOf, InvalidArgumentError } from '@shoal/core';

export interface ScalingPolicy {
  type: 'Pods' | 'Percent';
  /** Pods: replicas per period; Percent: percent of the replicas at the start of the period. */
  value: number;
  periodSeconds: number;
}

export type SelectPolicy = 'Max' | 'Min' | 'Disabled';

export interface ScalingRulesInput {
  stabilizationWindowSeconds?: number;
  selectPolicy?: SelectPolicy;
  policies?: readonly ScalingPolicy[];
}

export interface ScalingRules {
  readonly stabilizationWindowSeconds: number;
  readonly selectPolicy: SelectPolicy;
  readonly policies: readonly ScalingPolicy[];
}

export interface BehaviorInput {
  /**
   * Kubernetes' path for an HPA without `spec.behavior` (`normalizeDesiredReplicas`): the scale-down window takes
   * the highest recommendation (`scaleDown.stabilizationWindowSeconds`, the controller's
   * `--horizontal-pod-autoscaler-downscale-stabilization`, default 300), each decision may at most grow to
   * `max(2 × current, 4)`, and there is no scale-up window and no rate policy. Default false.
   */
  legacy?: boolean;
  scaleUp?: ScalingRulesInput;
  scaleDown?: ScalingRulesInput;
}

export interface Behavior {
  /** Kubernetes' legacy path (no `spec.behavior`); see `BehaviorInput.legacy`. */
  readonly legacy?: boolean;
  readonly scaleUp: ScalingRules;
  readonly scaleDown: ScalingRules;
}

/** The legacy path's scale-up cap (`scaleUpLimitFactor` 2, `scaleUpLimitMinimum` 4 in horizontal.go). */
export const LEGACY_SCALE_UP_FACTOR = 2;
export const LEGACY_SCALE_UP_MINIMUM = 4;
/** The controller's `--horizontal-pod-autoscaler-downscale-stabilization` default. */
export const LEGACY_DOWNSCALE_STABILIZATION_SECONDS = 300;

/** Kubernetes' defaults: up 0 s, {4 Pods, 100 %} per 15 s, Max; down 300 s, {100 %} per 15 s, Max. */
export const KUBERNETES_BEHAVIOR: Behavior = Object.freeze({
  scaleUp: Object.freeze({
    stabilizationWindowSeconds: 0,
    selectPolicy: 'Max' as const,
    policies: Object.freeze([
      Object.freeze({ type: 'Pods' as const, value: 4, periodSeconds: 15 }),
      Object.freeze({ type: 'Percent' as const, value: 100, periodSeconds: 15 }),
    ]),
  }),
  scaleDown: Object.freeze({
    stabilizationWindowSeconds: 300,
    selectPolicy: 'Max' as const,
    policies: Object.freeze([Object.freeze({ type: 'Percent' as const, value: 100, periodSeconds: 15 })]),
  }),
});

function resolveRules(name: string, input: ScalingRulesInput | undefined, defaults: ScalingRules): ScalingRules {
  if (input === undefined) return defaults;
  checkObject(name, input);
  const stabilizationWindowSeconds = input.stabilizationWindowSeconds ?? defaults.stabilizationWindowSeconds;
  assertInteger(`${name}.stabilizationWindowSeconds`, stabilizationWindowSeconds, 0, 3600);
  const selectPolicy = input.selectPolicy ?? defaults.selectPolicy;
  assertOneOf(`${name}.selectPolicy`, selectPolicy, ['Max', 'Min', 'Disabled'] as const);
  const policiesInput = input.policies ?? defaults.policies;
  if (!Array.isArray(policiesInput)) throw new InvalidArgumentError(`${name}.policies must be an array`);
  if (policiesInput.length === 0 && selectPolicy !== 'Disabled') {
    throw new InvalidArgumentError(`${name}.policies must hold at least one policy unless selectPolicy is Disabled`);
  }
  const policies = policiesInput.map((p, k) => {
    const at = `${name}.policies[${k}]`;
    checkObject(at, p);
    assertOneOf(`${at}.type`, p.type, ['Pods', 'Percent'] as const);
    assertInteger(`${at}.value`, p.value, 1);
    assertInteger(`${at}.periodSeconds`, p.periodSeconds, 1, 1800);
    return Object.freeze({ type: p.type, value: p.value, periodSeconds: p.periodSeconds });
  });
  return Object.freeze({ stabilizationWindowSeconds, selectPolicy, policies: Object.freeze(policies) });
}

function resolveLegacy(input: BehaviorInput): Behavior {
  if (input.scaleUp !== undefined) {
    throw new InvalidArgumentError('behavior.scaleUp must not be set with behavior.legacy (the legacy path has none)');
  }
  const down = input.scaleDown;
  if (down !== undefined) {
    checkObject('behavior.scaleDown', down);
    if (down.policies !== undefined || down.selectPolicy !== undefined) {
      throw new InvalidArgumentError(
        'behavior.scaleDown takes only stabilizationWindowSeconds with behavior.legacy (the legacy path has no rate policies)',
      );
    }
  }
  const windowSeconds = down?.stabilizationWindowSeconds ?? LEGACY_DOWNSCALE_STABILIZATION_SECONDS;
  assertInteger('behavior.scaleDown.stabilizationWindowSeconds', windowSeconds, 0, 3600);
  const none = (stabilizationWindowSeconds: number): ScalingRules =>
    Object.freeze({ stabilizationWindowSeconds, selectPolicy: 'Max' as const, policies: Object.freeze([]) });
  return Object.freeze({ legacy: true, scaleUp: none(0), scaleDown: none(windowSeconds) });
}

export function resolveBehavior(input: BehaviorInput | undefined, defaults: Behavior = KUBERNETES_BEHAVIOR): Behavior {
  if (input === undefined) return defaults;
  checkObject('behavior', input);
  if (input.legacy !== undefined && typeof input.legacy !== 'boolean') {
    throw new InvalidArgumentError(`behavior.legacy must be a boolean, got ${typeof input.legacy}`);
  }
  if (input.legacy === true) return resolveLegacy(input);
  return Object.freeze({
    scaleUp: resolveRules('behavior.scaleUp', input.scaleUp, defaults.scaleUp),
    scaleDown: resolveRules('behavior.scaleDown', input.scaleDown, defaults.scaleDown),
  });
}

/** A stored unstabilized recommendation (`t` epoch ms). */
export interface TimedRecommendation {
  t: number;
  replicas: number;
}

/** A stored scale event: replicas added (up) or removed (down), `t` epoch ms. */
export interface ScaleEvent {
  t: number;
  change: number;
}

/**
 * Stabilization: scale-up takes the minimum recommendation inside the up window, scale-down the maximum
 * inside the down window; the result is the current count moved into [upRecommendation, downRecommendation].
 */
export function stabilize(
  behavior: Behavior,
  now: number,
  currentReplicas: number,
  desired: number,
  recommendations: readonly TimedRecommendation[],
): { replicas: number; up: number; down: number } {
  const upCutoff = now - behavior.scaleUp.stabilizationWindowSeconds * 1000;
  const downCutoff = now - behavior.scaleDown.stabilizationWindowSeconds * 1000;
  let up = desired;
  let down = desired;
  for (const rec of recommendations) {
    if (rec.t > upCutoff) up = Math.min(up, rec.replicas);
    if (rec.t > downCutoff) down = Math.max(down, rec.replicas);
  }
  let replicas = currentReplicas;
  if (replicas < up) replicas = up;
  if (replicas > down) replicas = down;
  return { replicas, up, down };
}

function changeInPeriod(periodSeconds: number, now: number, events: readonly ScaleEvent[]): number {
  const cutoff = now - periodSeconds * 1000;
  let n = 0;
  for (const e of events) if (e.t > cutoff) n += e.change;
  return n;
}

/** The replica count at the start of a policy's period: the current count with the period's changes undone. */
function replicasAtPeriodStart(
  periodSeconds: number,
  now: number,
  currentReplicas: number,
  upEvents: readonly ScaleEvent[],
  downEvents: readonly ScaleEvent[],
): number {
  return (
    currentReplicas - changeInPeriod(periodSeconds, now, upEvents) + changeInPeriod(periodSeconds, now, downEvents)
  );
}

export function scaleUpLimit(
  rules: ScalingRules,
  now: number,
  currentReplicas: number,
  upEvents: readonly ScaleEvent[],
  downEvents: readonly ScaleEvent[],
): number {
  if (rules.selectPolicy === 'Disabled') return currentReplicas;
  const pick = rules.selectPolicy === 'Min' ? Math.min : Math.max;
  let result = rules.selectPolicy === 'Min' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  for (const p of rules.policies) {
    const start = replicasAtPeriodStart(p.periodSeconds, now, currentReplicas, upEvents, downEvents);
    const proposed = p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
    result = pick(result, proposed);
  }
  return result;
}

export function scaleDownLimit(
  rules: ScalingRules,
  now: number,
  currentReplicas: number,
  upEvents: readonly ScaleEvent[],
  downEvents: readonly ScaleEvent[],
): number {
  if (rules.selectPolicy === 'Disabled') return currentReplicas;
  const pick = rules.selectPolicy === 'Min' ? Math.max : Math.min;
  let result = rules.selectPolicy === 'Min' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  for (const p of rules.policies) {
    const start = replicasAtPeriodStart(p.periodSeconds, now, currentReplicas, upEvents, downEvents);
    const proposed = p.type === 'Pods' ? start - p.value : Math.trunc(start * (1 - p.value / 100));
    result = pick(result, proposed);
  }
  return result;
}

/**
 * Rate limits and min/max on a stabilized recommendation (`convertDesiredReplicasWithBehaviorRate`).
 * `ignoreUpLimit` lets Shoal's panic mode bypass the scale-up policies (Knative's max-scale-up-rate).
 */
export function limitRate(
  behavior: Behavior,
  now: number,
  currentReplicas: number,
  desired: number,
  minReplicas: number,
  maxReplicas: number,
  upEvents: readonly ScaleEvent[],
  downEvents: readonly ScaleEvent[],
  ignoreUpLimit = false,
): {
  replicas: number;
  limit: 'ScaleUpLimit' | 'TooManyReplicas' | 'ScaleDownLimit' | 'TooFewReplicas' | 'DesiredWithinRange';
} {
  if (desired > currentReplicas) {
    let upLimit = ignoreUpLimit
      ? Number.POSITIVE_INFINITY
      : scaleUpLimit(behavior.scaleUp, now, currentReplicas, upEvents, downEvents);
    if (upLimit < currentReplicas) upLimit = currentReplicas;
    let maximum = maxReplicas;
    let limit: 'ScaleUpLimit' | 'TooManyReplicas' = 'TooManyReplicas';
    if (maximum > upLimit) {
      maximum = upLimit;
      limit = 'ScaleUpLimit';
    }
    if (desired > maximum) return { replicas: maximum, limit };
  } else if (desired < currentReplicas) {
    let downLimit = scaleDownLimit(behavior.scaleDown, now, currentReplicas, upEvents, downEvents);
    if (downLimit > currentReplicas) downLimit = currentReplicas;
    let minimum = minReplicas;
    let limit: 'ScaleDownLimit' | 'TooFewReplicas' = 'TooFewReplicas';
    if (minimum < downLimit) {
      minimum = downLimit;
      limit = 'ScaleDownLimit';
    }
    if (desired < minimum) return { replicas: minimum, limit };
  }
  return { replicas: desired, limit: 'DesiredWithinRange' };
}

/**
 * The legacy path's stabilization (`stabilizeRecommendation`): the highest of `desired` and the recommendations
 * not older than the window (Kubernetes drops only those strictly before the cutoff).
 */
export function stabilizeLegacy(
  windowSeconds: number,
  now: number,
  desired: number,
  recommendations: readonly TimedRecommendation[],
): number {
  const cutoff = now - windowSeconds * 1000;
  let max = desired;
  for (const rec of recommendations) if (rec.t >= cutoff && rec.replicas > max) max = rec.replicas;
  return max;
}

/**
 * The legacy path's limits (`convertDesiredReplicasWithRules`): at most `max(2 × current, 4)` (or maxReplicas if
 * lower), at least minReplicas, and no limit on scaling down. `ignoreUpLimit`: panic mode skips the growth cap.
 */
export function limitLegacy(
  currentReplicas: number,
  desired: number,
  minReplicas: number,
  maxReplicas: number,
  ignoreUpLimit = false,
): { replicas: number; limit: 'ScaleUpLimit' | 'TooManyReplicas' | 'TooFewReplicas' | 'DesiredWithinRange' } {
  const upLimit = ignoreUpLimit
    ? Number.POSITIVE_INFINITY
    : Math.trunc(Math.max(LEGACY_SCALE_UP_FACTOR * currentReplicas, LEGACY_SCALE_UP_MINIMUM));
  let maximum = maxReplicas;
  let limit: 'ScaleUpLimit' | 'TooManyReplicas' = 'TooManyReplicas';
  if (maxReplicas > upLimit) {
    maximum = upLimit;
    limit = 'ScaleUpLimit';
  }
  if (desired < minReplicas) return { replicas: minReplicas, limit: 'TooFewReplicas' };
  if (desired > maximum) return { replicas: maximum, limit };
  return { replicas: desired, limit: 'DesiredWithinRange' };
}

export function longestPeriodMs(rules: ScalingRules): number {
  let longest = 0;
  for (const p of rules.policies) longest = Math.max(longest, p.periodSeconds * 1000);
  return longest;
}
