import { resolvePolicy } from '@shoal/policy';
import type { Observation, ObservedInstance, PolicyInput, PolicyState } from '@shoal/policy';
import { createDecideContext } from '@shoal/policy/internal';
import type { DecideContext, Sizing } from '@shoal/policy/internal';

export const T0 = Date.UTC(2026, 0, 5, 12, 0, 0); // a Monday, 12:00 UTC

export function fleet(
  n: number,
  metrics: Record<string, number>,
  extra: Partial<ObservedInstance> = {},
): ObservedInstance[] {
  return Array.from({ length: n }, (_, k) => ({ id: `i${k}`, ready: true, metrics: { ...metrics }, ...extra }));
}

export function context(
  policy: PolicyInput,
  current: number,
  instances: ObservedInstance[],
  state?: PolicyState,
  now = T0,
): DecideContext {
  const observation: Observation = { now, currentReplicas: current, instances };
  return createDecideContext(resolvePolicy(policy), observation, state);
}

export function sizing(over: Partial<Sizing> = {}): Sizing {
  return {
    proposal: -1,
    demand: 0,
    sizedDemand: 0,
    failed: 0,
    hold: false,
    panicking: false,
    panicOver: false,
    panicNeed: 0,
    ...over,
  };
}
