// Public API of @shoal/balancer.
export { Balancer } from './balancer.js';
export type { EjectionEvent, EjectionReason } from './balancer.js';
export { resolveBalancerOptions } from './options.js';
export type {
  BalancerOptions,
  BalancerContext,
  ResolvedBalancerOptions,
  SlowStartOptions,
  OutlierDetectionOptions,
  SuccessRateEjectionOptions,
  FailurePercentageEjectionOptions,
  ResolvedOutlierDetection,
  ResolvedSuccessRateEjection,
  ResolvedFailurePercentageEjection,
  RetryBudgetOptions,
  ZoneAwareOptions,
} from './options.js';
export type { PickHandle, PickOutcome } from './pick-handle.js';
export type { Endpoint, EndpointLoad, EndpointSnapshot } from './endpoint.js';
export type {
  Strategy,
  StrategyClass,
  StrategyEnv,
  StrategyFactory,
  StrategyFunction,
  StrategyOptions,
  PickContext,
} from './strategy.js';
export { registerStrategy, strategyNames, getStrategyFactory } from './strategy-registry.js';
export { createRandom } from './random.js';
export type { RandomSource } from './random.js';
export { hashKey } from './hash.js';
export { RoundRobinStrategy } from './strategies/round-robin.js';
export { PeakEwmaStrategy, UNMEASURED_PENALTY } from './strategies/peak-ewma.js';
export { RandomStrategy } from './strategies/random.js';
export { WeightedRoundRobinStrategy } from './strategies/weighted-round-robin.js';
export type { WrrScheduler } from './strategies/weighted-round-robin.js';
export { LeastConnectionsStrategy } from './strategies/least-connections.js';
export { LeastRequestStrategy } from './strategies/least-request.js';
export { ResponseTimeWeightedStrategy } from './strategies/response-time-weighted.js';
export { RingHashStrategy } from './strategies/ring-hash.js';
export { MaglevStrategy } from './strategies/maglev.js';
export { WeightedLeastLoadStrategy } from './strategies/weighted-least-load.js';
export { ZoneAwareStrategy } from './strategies/zone-aware.js';
export type { ZoneAwareConfig } from './strategies/zone-aware.js';
