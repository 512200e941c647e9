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

/** gRPC A50 `successRateEjection`: eject endpoints whose success rate is far below the others'. */
export interface SuccessRateEjectionOptions {
  /** Eject below mean − stdevFactor / 1000 × stdev of the success rates. Default 1900 (1.9 σ). */
  stdevFactor?: number;
  /** Percent chance that an endpoint found an outlier is really ejected. Default 100. */
  enforcementPercentage?: number;
  /** Endpoints that need `requestVolume` calls in the interval for the check to run at all. Default 5. */
  minimumHosts?: number;
  /** Calls an endpoint needs in the interval to count. Default 100. */
  requestVolume?: number;
}

/** gRPC A50 `failurePercentageEjection`: eject endpoints whose failure percentage exceeds a threshold. */
export interface FailurePercentageEjectionOptions {
  /** Eject above this failure percentage. Default 85. */
  threshold?: number;
  /** Percent chance that an endpoint over the threshold is really ejected. Default 100. */
  enforcementPercentage?: number;
  /** Endpoints that need `requestVolume` calls in the interval for the check to run at all. Default 5. */
  minimumHosts?: number;
  /** Calls an endpoint needs in the interval to count. Default 50. */
  requestVolume?: number;
}

export interface OutlierDetectionOptions {
  /** Consecutive failures that eject an endpoint at once (Envoy `consecutive_5xx`, Finagle). Default 5. 0 disables. */
  consecutiveFailures?: number;
  /** Success-rate ejection, evaluated every interval. Default on with the A50 values; `false` turns it off. */
  successRateEjection?: SuccessRateEjectionOptions | false;
  /** Failure-percentage ejection, evaluated every interval. Default off (opt-in, as in Envoy); `{}` = A50 values. */
  failurePercentageEjection?: FailurePercentageEjectionOptions | false;
  /** Evaluation interval of the success-rate and failure-percentage checks. Default 10 000 ms (A50). */
  intervalMs?: number;
  /** First ejection time; the n-th consecutive ejection lasts n × this. Default 30 000 ms (A50). */
  baseEjectionMs?: number;
  /** Cap on one ejection. Default 300 000 ms (A50). */
  maxEjectionMs?: number;
  /** No further ejection while this share (percent) of endpoints is ejected. Default 10 (A50). */
  maxEjectionPercent?: number;
}

export interface ResolvedSuccessRateEjection {
  readonly stdevFactor: number;
  readonly enforcementPercentage: number;
  readonly minimumHosts: number;
  readonly requestVolume: number;
}

export interface ResolvedFailurePercentageEjection {
  readonly threshold: number;
  readonly enforcementPercentage: number;
  readonly minimumHosts: number;
  readonly requestVolume: number;
}

export interface ResolvedOutlierDetection {
  readonly consecutiveFailures: number;
  readonly successRateEjection: ResolvedSuccessRateEjection | false;
  readonly failurePercentageEjection: ResolvedFailurePercentageEjection | false;
  readonly intervalMs: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
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

/**
 * What may differ between balancers that share one configuration (one per service, or per channel): the second
 * argument of `new Balancer(resolved, context)`. Each field overrides the option of the same name.
 */
export interface BalancerContext {
  /** Value of the `balancer` label on this balancer's metrics. */
  name?: string;
  /** Prefer endpoints whose `Instance.zone` equals this (e.g. from a gRPC target's `?zone=`). */
  localZone?: string;
  logger?: Logger;
  registry?: MetricsRegistry;
  clock?: Clock;
}

export interface BalancerOptions extends BalancerContext {
  /** Strategy name, class, factory function or object. Default `'peak_ewma'`. */
  strategy?: string | Strategy | StrategyFactory;
  /** Options for the strategy (see each strategy). */
  strategyOptions?: StrategyOptions;
  /** Slow start for endpoints added after the first `setEndpoints()`. Default `{ windowMs: 30000 }`. */
  slowStart?: SlowStartOptions | false;
  /** Passive outlier ejection (gRPC A50 / Envoy). Default on: consecutive failures and success rate. */
  outlierDetection?: OutlierDetectionOptions | false;
  /** Below this share (percent) of healthy endpoints, balance over all of them, ejected ones included. Default 50. */
  healthyPanicThresholdPercent?: number;
  /** Retry budget consulted by `tryRetry()`. Default on: 20 % + 10/s over 10 s (Finagle/Linkerd). */
  retryBudget?: RetryBudgetOptions | false;
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
}

export interface ResolvedBalancerOptions {
  readonly strategy: string | Strategy | StrategyFactory;
  readonly strategyOptions: StrategyOptions;
  readonly slowStart: Readonly<Required<SlowStartOptions>> | false;
  readonly outlierDetection: ResolvedOutlierDetection | false;
  readonly healthyPanicThresholdPercent: number;
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

const CONTEXT_KEYS = ['name', 'localZone', 'logger', 'registry', 'clock'] as const;
const KNOWN = [
  'strategy',
  'strategyOptions',
  'slowStart',
  'outlierDetection',
  'healthyPanicThresholdPercent',
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
/** The objects `resolveBalancerOptions` returned: passing one again (or to `new Balancer`) costs nothing. */
const resolvedOptions = new WeakSet<object>();

/**
 * Applies defaults, validates (errors name the option and the value) and freezes the balancer options. Resolve
 * once, where the configuration enters (a dispatcher, a gRPC policy config), and pass the result on: a resolved
 * object given again, here or to `new Balancer()`, is used as it is.
 */
export function resolveBalancerOptions(input: BalancerOptions | ResolvedBalancerOptions = {}): ResolvedBalancerOptions {
  if (resolvedOptions.has(input)) return input as ResolvedBalancerOptions;
  assertObject('options', input as unknown);
  assertKnownKeys('options', input as Record<string, unknown>, KNOWN);
  const o = input as BalancerOptions;
  const strategy: string | Strategy | StrategyFactory = o.strategy ?? 'peak_ewma';
  if (
    typeof strategy !== 'string' &&
    typeof strategy !== 'function' &&
    (typeof strategy !== 'object' || strategy === null)
  ) {
    throw new InvalidArgumentError(`strategy must be a name, class, factory or object, got ${describeValue(strategy)}`);
  }
  const strategyOptions = o.strategyOptions ?? {};
  assertObject('strategyOptions', strategyOptions);
  const random = o.random ?? Math.random;
  if (typeof random !== 'function')
    throw new InvalidArgumentError(`random must be a function, got ${describeValue(random)}`);
  const resolved: ResolvedBalancerOptions = Object.freeze({
    strategy,
    strategyOptions: Object.freeze({ ...strategyOptions }),
    slowStart: resolveSlowStart(o.slowStart),
    outlierDetection: resolveOutlierDetection(o.outlierDetection),
    healthyPanicThresholdPercent: numberOption(
      'healthyPanicThresholdPercent',
      o.healthyPanicThresholdPercent,
      50,
      0,
      100,
    ),
    retryBudget: resolveRetryBudget(o.retryBudget),
    zoneAware: resolveZoneAware(o.zoneAware),
    handleTimeoutMs: numberOption('handleTimeoutMs', o.handleTimeoutMs, 60_000, 1, DAY_MS),
    sweepIntervalMs: numberOption('sweepIntervalMs', o.sweepIntervalMs, 1000, 10, 3_600_000),
    ewmaDecayMs: numberOption('ewmaDecayMs', o.ewmaDecayMs, 10_000, 0, DAY_MS, { exclusiveMin: true }),
    random,
    ...resolveContext(o, { name: 'default', localZone: undefined, clock: realClock }),
  });
  resolvedOptions.add(resolved);
  return resolved;
}

/**
 * Resolved options for one balancer: `options` (resolved or not) with the per-balancer `context` applied. Only the
 * context is validated when `options` is already resolved.
 */
export function applyBalancerContext(
  options: BalancerOptions | ResolvedBalancerOptions,
  context: BalancerContext | undefined,
): ResolvedBalancerOptions {
  const resolved = resolveBalancerOptions(options);
  if (context === undefined) return resolved;
  assertObject('context', context as unknown);
  assertKnownKeys('context', context as Record<string, unknown>, CONTEXT_KEYS);
  return Object.freeze({ ...resolved, ...resolveContext(context, resolved) });
}

type ResolvedContext = Pick<ResolvedBalancerOptions, 'name' | 'localZone' | 'logger' | 'registry' | 'clock'>;

function resolveContext(input: BalancerContext, base: Partial<ResolvedContext>): ResolvedContext {
  const name = input.name ?? base.name ?? 'default';
  assertString('name', name, { maxLength: 128 });
  const localZone = input.localZone ?? base.localZone;
  if (localZone !== undefined) assertString('localZone', localZone, { maxLength: 128 });
  const clock: Clock = input.clock ?? base.clock ?? realClock;
  if (typeof clock !== 'object' || clock === null || typeof (clock as Partial<Clock>).monotonic !== 'function') {
    throw new InvalidArgumentError(`clock must be a Clock, got ${describeValue(clock)}`);
  }
  return {
    name,
    localZone,
    logger: input.logger ?? base.logger,
    registry: input.registry ?? base.registry,
    clock,
  };
}

function resolveSlowStart(input: SlowStartOptions | false | undefined): ResolvedBalancerOptions['slowStart'] {
  if (input === false) return false;
  const s = optionObject('slowStart', input ?? { windowMs: 30_000 }, ['windowMs', 'aggression', 'minWeightPercent']);
  if (s.windowMs === undefined)
    throw new InvalidArgumentError('slowStart.windowMs must be a number > 0, got undefined');
  return Object.freeze({
    windowMs: numberOption('slowStart.windowMs', s.windowMs, 30_000, 0, DAY_MS, { exclusiveMin: true }),
    aggression: numberOption('slowStart.aggression', s.aggression, 1, 0, 100, { exclusiveMin: true }),
    minWeightPercent: numberOption('slowStart.minWeightPercent', s.minWeightPercent, 10, 0, 100, {
      exclusiveMin: true,
    }),
  });
}

const OUTLIER_KEYS = [
  'consecutiveFailures',
  'successRateEjection',
  'failurePercentageEjection',
  'intervalMs',
  'baseEjectionMs',
  'maxEjectionMs',
  'maxEjectionPercent',
];

function resolveOutlierDetection(input: OutlierDetectionOptions | false | undefined): ResolvedOutlierDetection | false {
  if (input === false) return false;
  const o = optionObject('outlierDetection', input, OUTLIER_KEYS);
  const p = 'outlierDetection';
  const baseEjectionMs = numberOption(`${p}.baseEjectionMs`, o.baseEjectionMs, 30_000, 0, DAY_MS, {
    exclusiveMin: true,
  });
  const maxEjectionMs = numberOption(`${p}.maxEjectionMs`, o.maxEjectionMs, 300_000, 0, DAY_MS, {
    exclusiveMin: true,
  });
  return Object.freeze({
    consecutiveFailures: numberOption(`${p}.consecutiveFailures`, o.consecutiveFailures, 5, 0, 1e9, { integer: true }),
    successRateEjection: resolveSuccessRate(o.successRateEjection),
    failurePercentageEjection: resolveFailurePercentage(o),
    intervalMs: numberOption(`${p}.intervalMs`, o.intervalMs, 10_000, 0, DAY_MS, { exclusiveMin: true }),
    baseEjectionMs,
    // A50: an ejection lasts min(base × n, max(base, maxEjectionTime)).
    maxEjectionMs: Math.max(baseEjectionMs, maxEjectionMs),
    maxEjectionPercent: numberOption(`${p}.maxEjectionPercent`, o.maxEjectionPercent, 10, 0, 100),
  });
}

function resolveSuccessRate(input: unknown): ResolvedSuccessRateEjection | false {
  if (input === false) return false;
  const p = 'outlierDetection.successRateEjection';
  const s = optionObject(p, input, ['stdevFactor', 'enforcementPercentage', 'minimumHosts', 'requestVolume']);
  return Object.freeze({
    stdevFactor: numberOption(`${p}.stdevFactor`, s.stdevFactor, 1900, 0, 1e6),
    enforcementPercentage: numberOption(`${p}.enforcementPercentage`, s.enforcementPercentage, 100, 0, 100),
    minimumHosts: numberOption(`${p}.minimumHosts`, s.minimumHosts, 5, 1, 1e6, { integer: true }),
    requestVolume: numberOption(`${p}.requestVolume`, s.requestVolume, 100, 1, 1e9, { integer: true }),
  });
}

/** `failurePercentageEjection` (off unless given; `{}` = the A50 values). */
function resolveFailurePercentage(o: Record<string, unknown>): ResolvedFailurePercentageEjection | false {
  const input = o.failurePercentageEjection ?? false;
  if (input === false) return false;
  const p = 'outlierDetection.failurePercentageEjection';
  const f = optionObject(p, input, ['threshold', 'enforcementPercentage', 'minimumHosts', 'requestVolume']);
  return Object.freeze({
    threshold: numberOption(`${p}.threshold`, f.threshold, 85, 0, 100),
    enforcementPercentage: numberOption(`${p}.enforcementPercentage`, f.enforcementPercentage, 100, 0, 100),
    minimumHosts: numberOption(`${p}.minimumHosts`, f.minimumHosts, 5, 1, 1e6, { integer: true }),
    requestVolume: numberOption(`${p}.requestVolume`, f.requestVolume, 50, 1, 1e9, { integer: true }),
  });
}

function resolveRetryBudget(input: RetryBudgetOptions | false | undefined): ResolvedBalancerOptions['retryBudget'] {
  if (input === false) return false;
  const r = optionObject('retryBudget', input, ['ratio', 'minRetriesPerSecond', 'ttlMs']);
  return Object.freeze({
    ratio: numberOption('retryBudget.ratio', r.ratio, 0.2, 0, 1000),
    minRetriesPerSecond: numberOption('retryBudget.minRetriesPerSecond', r.minRetriesPerSecond, 10, 0, 1e9),
    ttlMs: numberOption('retryBudget.ttlMs', r.ttlMs, 10_000, 1000, DAY_MS),
  });
}

function resolveZoneAware(input: ZoneAwareOptions | undefined): ResolvedBalancerOptions['zoneAware'] {
  const z = optionObject('zoneAware', input, ['minHealthyPercent', 'spilloverLoadFactor']);
  return Object.freeze({
    minHealthyPercent: numberOption('zoneAware.minHealthyPercent', z.minHealthyPercent, 70, 0, 100),
    spilloverLoadFactor: numberOption('zoneAware.spilloverLoadFactor', z.spilloverLoadFactor, 2, 0, 1e6, {
      exclusiveMin: true,
    }),
  });
}
