/**
 * The engine's memory between decisions. Plain JSON (numbers, arrays, null), so the coordinator can persist
 * it (`JSON.stringify`) and resume after a restart with the same behaviour.
 */
import { InvalidArgumentError } from '@shoal/core';
import type { ScaleEvent, TimedRecommendation } from './behavior.js';

/** One demand sample: `d` is the unrounded replicas the metrics asked for, `t` epoch ms. */
export interface DemandSample {
  t: number;
  d: number;
}

export interface PolicyState {
  version: 1;
  /** Unstabilized recommendations (for the stabilization windows). */
  recommendations: TimedRecommendation[];
  scaleUpEvents: ScaleEvent[];
  scaleDownEvents: ScaleEvent[];
  /** Demand history for panic mode and the forecast. */
  samples: DemandSample[];
  /** Panic: when it began (null: not panicking), when demand was last over the threshold, its high mark. */
  panic: { since: number | null; lastOverAt: number | null; maxReplicas: number };
  /** Time of the previous decision (null before the first). */
  lastDecisionAt: number | null;
}

export function initialState(): PolicyState {
  return {
    version: 1,
    recommendations: [],
    scaleUpEvents: [],
    scaleDownEvents: [],
    samples: [],
    panic: { since: null, lastOverAt: null, maxReplicas: 0 },
    lastDecisionAt: null,
  };
}

function timedArray(name: string, v: unknown, field: 'replicas' | 'change' | 'd'): void {
  if (!Array.isArray(v)) throw new InvalidArgumentError(`state.${name} must be an array`);
  for (let k = 0; k < v.length; k++) {
    const e = v[k] as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || typeof e.t !== 'number' || typeof e[field] !== 'number') {
      throw new InvalidArgumentError(`state.${name}[${k}] must be { t: number, ${field}: number }`);
    }
  }
}

/** Checks a state read back from storage; `undefined` gives a fresh state. Returns a copy `decide` may change. */
export function restoreState(state: PolicyState | undefined | null): PolicyState {
  if (state === undefined || state === null) return initialState();
  if (typeof state !== 'object') throw new InvalidArgumentError(`state must be an object, got ${typeof state}`);
  if (state.version !== 1) throw new InvalidArgumentError(`state.version must be 1, got ${String(state.version)}`);
  timedArray('recommendations', state.recommendations, 'replicas');
  timedArray('scaleUpEvents', state.scaleUpEvents, 'change');
  timedArray('scaleDownEvents', state.scaleDownEvents, 'change');
  timedArray('samples', state.samples, 'd');
  const p = state.panic as PolicyState['panic'] | undefined;
  if (typeof p !== 'object' || p === null || typeof p.maxReplicas !== 'number') {
    throw new InvalidArgumentError('state.panic must be { since, lastOverAt, maxReplicas }');
  }
  return {
    version: 1,
    recommendations: state.recommendations.slice(),
    scaleUpEvents: state.scaleUpEvents.slice(),
    scaleDownEvents: state.scaleDownEvents.slice(),
    samples: state.samples.slice(),
    panic: { since: p.since ?? null, lastOverAt: p.lastOverAt ?? null, maxReplicas: p.maxReplicas },
    lastDecisionAt: typeof state.lastDecisionAt === 'number' ? state.lastDecisionAt : null,
  };
}

/** Drops entries with `t <= cutoff` in place (arrays are kept in time order). */
export function pruneBefore<T extends { t: number }>(items: T[], cutoff: number): void {
  let n = 0;
  while (n < items.length && (items[n] as T).t <= cutoff) n++;
  if (n > 0) items.splice(0, n);
}
