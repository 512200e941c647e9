import {
  InvalidArgumentError,
  assertKnownKeys,
  assertObject,
  assertString,
  describeValue,
  realClock,
  type Clock,
  type Logger,
  type MetricsRegistry,
} from '@shoal/core';
import { numberOption, optionObject } from './options-util.js';
import type { RandomSource } from './random.js';
import type { Strategy, StrategyFactory, StrategyOptions } from './strategy.js';

export interface SlowStartOptions {
  /** How long a new endpoint's share ramps up. */
  windowMs: number;
  /** Curve shape: share = time^(1/aggression); 1 = linear, larger = faster early ramp. Default 1. */
  aggression?: number;
  /** The share a brand-new endpoint starts at, percent of a full share. Default 10. */
  minWeightPercent?: number;
}

export interface OutlierDetectionOptions {
  /** Consecutive failures that eject an endpoint at once. Default 5 (Finagle). 0 disables. */
  consecutiveFailures?: number;
  /** Failure ratio (0..1] over an interval that ejects an endpoint. Default 0.85 (gRPC A50). */
  failureRateThreshold?: number;
  /** Calls an endpoint must see in an interval before its failure ratio counts. Default 50 (A50). */
  failureRateMinRequests?: number;
  /** Failure-rate evaluation interval. Default 10 000 ms (A50). */
  intervalMs?: number;
  /** First ejection time; the n-th consecutive ejection lasts n × this. Default 30 000 ms (A50). */
  baseEjectionMs?: number;
  /** Cap on one ejection. Default 300 000 ms (A50). */
  maxEjectionMs?: number;
  /** No further ejection while this share (percent) of endpoints is ejected. Default 10 (A50). */
  maxEjectionPercent?: number;
}

export interface RetryBudgetOptions {
  /** Retries allowed per original request over the window. Default 0.2. */
  ratio?: number;
  /** Retries always allowed per second, whatever the traffic. Default 10. */
  minRetriesPerSecond?: number;
  /** Window over which requests and retries are counted. Default 10 000 ms. */
  ttlMs?: number;
}

export interface ZoneAwareOptions {
  /** The local zone counts as unhealthy below this share (percent) of its endpoints pickable. Default 70. */
  minHealthyPercent?: number;
  /**
   * Spill to all zones when the mean in-flight per local endpoint exceeds this factor × (the mean elsewhere + 1).
   * Default 2.
   */
  spilloverLoadFactor?: number;
}

export interface BalancerOptions {
  /** Strategy name, class, factory function or object. Default `'peak_ewma'`. */
  strategy?: string | Strategy | StrategyFactory;
  /** Options for the strategy (see each strategy). */
  strategyOptions?: StrategyOptions;
  /** Slow start for endpoints added after the first `setEndpoints()`. Default `{ windowMs: 30000 }`. */
  slowStart?: SlowStartOptions | false;
  /** Passive outlier ejection. Default on with the A50 defaults. */
  outlierDetection?: OutlierDetectionOptions | false;
  /** Retry budget consulted by `tryRetry()`. Default on: 20 % + 10/s over 10 s (Finagle/Linkerd). */
  retryBudget?: RetryBudgetOptions | false;
  /** Prefer endpoints whose `Instance.zone` equals this (wraps the strategy in `zone_aware`). */
  localZone?: string;
  /** Tuning for `localZone`. */
  zoneAware?: ZoneAwareOptions;
  /** A handle not completed within this time stops counting as in flight. Default 60 000 ms. */
  handleTimeoutMs?: number;
  /** Period of the one coarse background timer (sweeps, ejection returns, slow start, budgets). Default 1000 ms. */
  sweepIntervalMs?: number;
  /** Decay time of the per-endpoint latency EWMA. Default 10 000 ms (Finagle, Linkerd). */
  ewmaDecayMs?: number;
  /** Random source; pass `createRandom(seed)` for reproducible picks. Default `Math.random`. */
  random?: RandomSource;
  /** Value of the `balancer` label on this balancer's metrics. Default `'default'`. */
  name?: string;
  logger?: Logger;
  registry?: MetricsRegistry;
  clock?: Clock;
}

export interface ResolvedBalancerOptions {
  readonly strategy: string | Strategy | StrategyFactory;
  readonly strategyOptions: StrategyOptions;
  readonly slowStart: Readonly<Required<SlowStartOptions>> | false;
  readonly outlierDetection: Readonly<Required<OutlierDetectionOptions>> | false;
  readonly retryBudget: Readonly<Required<RetryBudgetOptions>> | false;
  readonly localZone: string | undefined;
  readonly zoneAware: Readonly<Required<ZoneAwareOptions>>;
  readonly handleTimeoutMs: number;
  readonly sweepIntervalMs: number;
  readonly ewmaDecayMs: number;
  readonly random: RandomSource;
  readonly name: string;
  readonly logger: Logger | undefined;
  readonly registry: MetricsRegistry | undefined;
  readonly clock: Clock;
}

const KNOWN = [
  'strategy',
  'strategyOptions',
  'slowStart',
  'outlierDetection',
  'retryBudget',
  'localZone',
  'zoneAware',
  'handleTimeoutMs',
  'sweepIntervalMs',
  'ewmaDecayMs',
  'random',
  'name',
  'logger',
  'registry',
  'clock',
] as const;

const DAY_MS = 86_400_000;

/** Applies defaults, validates (errors name the option and the value) and freezes the balancer options. */
export function resolveBalancerOptions(input: BalancerOptions = {}): ResolvedBalancerOptions {
  assertObject('options', input as unknown);
  assertKnownKeys('options', input as Record<string, unknown>, KNOWN);
  const strategy: string | Strategy | StrategyFactory = input.strategy ?? 'peak_ewma';
  if (
    typeof strategy !== 'string' &&
    typeof strategy !== 'function' &&
    (typeof strategy !== 'object' || strategy === null)
  ) {
    throw new InvalidArgumentError(`strategy must be a name, class, factory or object, got ${describeValue(strategy)}`);
  }
  const strategyOptions = input.strategyOptions ?? {};
  assertObject('strategyOptions', strategyOptions);

  let slowStart: ResolvedBalancerOptions['slowStart'];
  if (input.slowStart === false) slowStart = false;
  else {
    const s = optionObject('slowStart', input.slowStart ?? { windowMs: 30_000 }, [
      'windowMs',
      'aggression',
      'minWeightPercent',
    ]);
    if (s.windowMs === undefined)
      throw new InvalidArgumentError('slowStart.windowMs must be a number > 0, got undefined');
    slowStart = Object.freeze({
      windowMs: numberOption('slowStart.windowMs', s.windowMs, 30_000, 0, DAY_MS, { exclusiveMin: true }),
      aggression: numberOption('slowStart.aggression', s.aggression, 1, 0, 100, { exclusiveMin: true }),
      minWeightPercent: numberOption('slowStart.minWeightPercent', s.minWeightPercent, 10, 0, 100, {
        exclusiveMin: true,
      }),
    });
  }

  let outlierDetection: ResolvedBalancerOptions['outlierDetection'];
  if (input.outlierDetection === false) outlierDetection = false;
  else {
    const o = optionObject('outlierDetection', input.outlierDetection, [
      'consecutiveFailures',
      'failureRateThreshold',
      'failureRateMinRequests',
      'intervalMs',
      'baseEjectionMs',
      'maxEjectionMs',
      'maxEjectionPercent',
    ]);
    const baseEjectionMs = numberOption('outlierDetection.baseEjectionMs', o.baseEjectionMs, 30_000, 0, DAY_MS, {
      exclusiveMin: true,
    });
    outlierDetection = Object.freeze({
      consecutiveFailures: numberOption('outlierDetection.consecutiveFailures', o.consecutiveFailures, 5, 0, 1e9, {
        integer: true,
      }),
      failureRateThreshold: numberOption('outlierDetection.failureRateThreshold', o.failureRateThreshold, 0.85, 0, 1, {
        exclusiveMin: true,
      }),
      failureRateMinRequests: numberOption(
        'outlierDetection.failureRateMinRequests',
        o.failureRateMinRequests,
        50,
        1,
        1e9,
        { integer: true },
      ),
      intervalMs: numberOption('outlierDetection.intervalMs', o.intervalMs, 10_000, 0, DAY_MS, { exclusiveMin: true }),
      baseEjectionMs,
      maxEjectionMs: Math.max(
        baseEjectionMs,
        numberOption('outlierDetection.maxEjectionMs', o.maxEjectionMs, 300_000, 0, DAY_MS, { exclusiveMin: true }),
      ),
      maxEjectionPercent: numberOption('outlierDetection.maxEjectionPercent', o.maxEjectionPercent, 10, 0, 100),
    });
  }

  let retryBudget: ResolvedBalancerOptions['retryBudget'];
  if (input.retryBudget === false) retryBudget = false;
  else {
    const r = optionObject('retryBudget', input.retryBudget, ['ratio', 'minRetriesPerSecond', 'ttlMs']);
    retryBudget = Object.freeze({
      ratio: numberOption('retryBudget.ratio', r.ratio, 0.2, 0, 1000),
      minRetriesPerSecond: numberOption('retryBudget.minRetriesPerSecond', r.minRetriesPerSecond, 10, 0, 1e9),
      ttlMs: numberOption('retryBudget.ttlMs', r.ttlMs, 10_000, 1000, DAY_MS),
    });
  }

  if (input.localZone !== undefined) assertString('localZone', input.localZone, { maxLength: 128 });
  const z = optionObject('zoneAware', input.zoneAware, ['minHealthyPercent', 'spilloverLoadFactor']);
  const zoneAware = Object.freeze({
    minHealthyPercent: numberOption('zoneAware.minHealthyPercent', z.minHealthyPercent, 70, 0, 100),
    spilloverLoadFactor: numberOption('zoneAware.spilloverLoadFactor', z.spilloverLoadFactor, 2, 0, 1e6, {
      exclusiveMin: true,
    }),
  });

  const random = input.random ?? Math.random;
  if (typeof random !== 'function')
    throw new InvalidArgumentError(`random must be a function, got ${describeValue(random)}`);
  const name = input.name ?? 'default';
  assertString('name', name, { maxLength: 128 });
  const clock: Clock = input.clock ?? realClock;
  if (typeof clock !== 'object' || clock === null || typeof (clock as Partial<Clock>).monotonic !== 'function') {
    throw new InvalidArgumentError(`clock must be a Clock, got ${describeValue(clock)}`);
  }

  return Object.freeze({
    strategy,
    strategyOptions: Object.freeze({ ...strategyOptions }),
    slowStart,
    outlierDetection,
    retryBudget,
    localZone: input.localZone,
    zoneAware,
    handleTimeoutMs: numberOption('handleTimeoutMs', input.handleTimeoutMs, 60_000, 1, DAY_MS),
    sweepIntervalMs: numberOption('sweepIntervalMs', input.sweepIntervalMs, 1000, 10, 3_600_000),
    ewmaDecayMs: numberOption('ewmaDecayMs', input.ewmaDecayMs, 10_000, 0, DAY_MS, { exclusiveMin: true }),
    random,
    name,
    logger: input.logger,
    registry: input.registry,
    clock,
  });
}
