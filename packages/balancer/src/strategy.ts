import type { Clock } from '@shoal/core';
import type { Endpoint } from './endpoint.js';
import type { RandomSource } from './random.js';

/** What the caller may pass to `Balancer.pick()`. The balancer hands it to the strategy untouched. */
export interface PickContext {
  /** Request key for consistent-hashing strategies (`ring_hash`, `maglev`); ignored by the others. */
  readonly key?: string | Uint8Array;
  /** Instance ids not to pick (e.g. the endpoints a retry already tried). */
  readonly exclude?: ReadonlySet<string>;
}

/** What the balancer gives a strategy when creating it. */
export interface StrategyEnv {
  /** The balancer's random source (seedable through the `random` option). Use it instead of `Math.random`. */
  readonly random: RandomSource;
  readonly clock: Clock;
  /**
   * Balancer-monotonic time in ms, refreshed at every completion and every sweep tick: cheap to read on the hot
   * path, coarse when the balancer is idle.
   */
  now(): number;
  /** The EWMA decay time the balancer uses for `Endpoint.ewmaMs`. */
  readonly ewmaDecayMs: number;
}

/**
 * A load-balancing algorithm. The balancer owns the endpoints and their stats; a strategy only chooses.
 *
 * Contract:
 * - `update(ready, all)` is called whenever the set of pickable endpoints changes (discovery update, ejection,
 *   return from ejection, availability change) and whenever an endpoint's `slowStartFactor` changes (at most once
 *   per sweep tick while an endpoint warms up). `ready` is what to choose from: the available endpoints that are
 *   not ejected, or all available ones in panic mode (fewer than `healthyPanicThresholdPercent` healthy); it is
 *   empty only when no endpoint is available (then `pick` is not called). The arrays are owned by the balancer
 *   and not mutated after the call; a strategy may keep them.
 * - Slow start is a weight the strategy applies: multiply each endpoint's weight (or 1, for strategies that ignore
 *   `Instance.weight`) by its `slowStartFactor`, so that under equal load a warming endpoint's share is its
 *   weighted share. A strategy that cannot (consistent hashing) declares `slowStart: false` and the factor stays 1.
 * - `pick(ctx, attempt)` returns one endpoint of `ready`, or `undefined` if it cannot. It must be O(1) or
 *   O(log n) and allocate nothing. `attempt` counts re-picks within one `Balancer.pick()` (after the balancer
 *   refused the candidate because it was in `ctx.exclude`); deterministic strategies should return a different
 *   endpoint on a later attempt.
 * - Optional hooks: `onPick` after the balancer settled on an endpoint, `onComplete` when its call finished,
 *   `tick(nowMs)` on the balancer's coarse sweep timer (default every second), for periodic work such as
 *   recomputing weights. Never start timers of your own.
 */
export interface Strategy {
  readonly name: string;
  /**
   * Whether this strategy applies slow start (default true): the balancer ramps each new endpoint's
   * `slowStartFactor` and the strategy weighs it by that. false (the hashing strategies): the factor stays 1.
   */
  readonly slowStart?: boolean;
  /** The EWMA decay this strategy needs the balancer to use (peak_ewma's `decayMs`); overrides `ewmaDecayMs`. */
  readonly ewmaDecayMs?: number;
  /**
   * Count-based window of the EWMA (peak_ewma's `sampleWindow`): each observation below the estimate weighs at
   * least `1 / ewmaSampleWindow`. Absent or 0: the weight depends on elapsed time only.
   */
  readonly ewmaSampleWindow?: number;
  update(ready: readonly Endpoint[], all: readonly Endpoint[]): void;
  pick(ctx: PickContext | undefined, attempt: number): Endpoint | undefined;
  onPick?(endpoint: Endpoint): void;
  onComplete?(endpoint: Endpoint, success: boolean, latencyMs: number): void;
  tick?(nowMs: number): void;
}

/** Options as the user wrote them; each strategy validates its own. */
export type StrategyOptions = Readonly<Record<string, unknown>>;

/** A strategy class: `new MyStrategy(options, env)`. */
export type StrategyClass = new (options: StrategyOptions, env: StrategyEnv) => Strategy;
/** A strategy factory function: `(options, env) => strategy`. */
export type StrategyFunction = (options: StrategyOptions, env: StrategyEnv) => Strategy;
/** Either form; `registerStrategy()` and the `strategy` option accept both. */
export type StrategyFactory = StrategyClass | StrategyFunction;
