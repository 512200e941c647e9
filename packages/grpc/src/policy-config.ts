import { resolveBalancerOptions } from '@shoal/balancer';
import type {
  BalancerOptions,
  OutlierDetectionOptions,
  ResolvedBalancerOptions,
  RetryBudgetOptions,
  SlowStartOptions,
  ZoneAwareOptions,
} from '@shoal/balancer';
import {
  InvalidArgumentError,
  assertKnownKeys,
  assertObject,
  assertString,
  describeValue,
  isShoalError,
} from '@shoal/core';
import { Status } from './grpc-js-compat.js';
/** The Shoal policies registered into grpc-js, and the `@shoal/balancer` strategy behind each. */
export const POLICY_STRATEGIES = {
  shoal_round_robin: 'round_robin',
  shoal_random: 'random',
  shoal_weighted_round_robin: 'weighted_round_robin',
  shoal_least_request: 'least_request',
  shoal_peak_ewma: 'peak_ewma',
  shoal_ring_hash: 'ring_hash',
  shoal_weighted_least_load: 'weighted_least_load',
} as const;

export type ShoalPolicyName = keyof typeof POLICY_STRATEGIES;
export const POLICY_NAMES = Object.keys(POLICY_STRATEGIES) as ShoalPolicyName[];

export type SlowStartConfig = SlowStartOptions;
export type OutlierDetectionConfig = OutlierDetectionOptions;

/**
 * The JSON a Shoal policy accepts in `loadBalancingConfig`, e.g.
 * `{ "shoal_peak_ewma": { "localZone": "eu-west-1a", "slowStart": { "windowMs": 30000 } } }`.
 */
export interface ShoalPolicyConfigJson {
  /** Prefer endpoints in this zone (falls back to others when the zone is unhealthy or overloaded). Default: the target's `?zone=`. */
  localZone?: string;
  /** Tuning of the zone preference (`minHealthyPercent`, `spilloverLoadFactor`). */
  zoneAware?: ZoneAwareOptions;
  /** Ramp new endpoints in over a window. Default: the balancer's (`{ windowMs: 30000 }`); `false` turns it off. */
  slowStart?: SlowStartConfig | false;
  /** Eject endpoints that keep failing. Default: the balancer's (gRPC A50 values); `false` turns it off. */
  outlierDetection?: OutlierDetectionConfig | false;
  /**
   * Budget for the retry and hedge attempts grpc-js makes under a service config `retryPolicy`/`hedgingPolicy` (an
   * attempt past the budget fails at once with UNAVAILABLE, sending nothing). Default: the balancer's (20 % of
   * calls + 10/s over 10 s); `false` turns it off.
   */
  retryBudget?: RetryBudgetOptions | false;
  /** Options passed to the `@shoal/balancer` strategy (e.g. `{ decayMs: 10000 }` for peak EWMA). */
  strategyOptions?: Record<string, unknown>;
  /** Decay time of the per-endpoint latency EWMA, ms. Default: the balancer's (10000). */
  ewmaDecayMs?: number;
  /** shoal_ring_hash only (required there): the request metadata key whose value is hashed. */
  hashHeader?: string;
  /** Status codes (names or numbers) that count as endpoint failures. Default: UNAVAILABLE, INTERNAL, UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, DATA_LOSS. */
  failureCodes?: Array<string | number>;
}

/** Balancer options a policy passes to `new Balancer()` (logger, registry and clock are added by the policy). */
export type PolicyBalancerOptions = Pick<
  BalancerOptions,
  | 'strategy'
  | 'strategyOptions'
  | 'slowStart'
  | 'outlierDetection'
  | 'retryBudget'
  | 'localZone'
  | 'zoneAware'
  | 'ewmaDecayMs'
>;

export interface ResolvedPolicyConfig {
  readonly policy: ShoalPolicyName;
  readonly strategy: string;
  /** Resolved once here; the policy adds its context (name, zone from the target, logger, registry, clock). */
  readonly balancer: ResolvedBalancerOptions;
  readonly localZone?: string;
  readonly hashHeader?: string;
  readonly failureCodes: ReadonlySet<number>;
}

export const DEFAULT_FAILURE_CODES = [
  'UNAVAILABLE',
  'INTERNAL',
  'UNKNOWN',
  'DEADLINE_EXCEEDED',
  'RESOURCE_EXHAUSTED',
  'DATA_LOSS',
] as const;

/** The keys a `shoal_*` policy's JSON config may hold (anything else is refused). */
export const POLICY_CONFIG_KEYS: readonly string[] = [
  'localZone',
  'zoneAware',
  'slowStart',
  'outlierDetection',
  'retryBudget',
  'strategyOptions',
  'ewmaDecayMs',
  'hashHeader',
  'failureCodes',
];
const HEADER_RE = /^[0-9a-z_.-]+$/;
const STATUS_BY_NAME = Status as unknown as Record<string, number>;

function statusCode(path: string, value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 16) return value;
  if (typeof value === 'string' && typeof STATUS_BY_NAME[value] === 'number') return STATUS_BY_NAME[value];
  throw new InvalidArgumentError(
    `${path} must be a gRPC status name (e.g. "UNAVAILABLE") or code 0-16, got ${describeValue(value)}`,
  );
}

/**
 * Validates one policy's JSON config and applies defaults. Errors name the field with its full path, e.g.
 * `shoal_peak_ewma.slowStart.windowMs must be a number > 0, got -5`.
 */
export function resolvePolicyConfig(policy: ShoalPolicyName, json: unknown): ResolvedPolicyConfig {
  const p = policy;
  const raw = json ?? {};
  assertObject(p, raw);
  assertKnownKeys(p, raw, POLICY_CONFIG_KEYS);
  const strategy = POLICY_STRATEGIES[policy];
  const balancer: PolicyBalancerOptions = { strategy };
  for (const key of [
    'strategyOptions',
    'slowStart',
    'outlierDetection',
    'retryBudget',
    'localZone',
    'zoneAware',
    'ewmaDecayMs',
  ] as const) {
    if (raw[key] !== undefined) (balancer as Record<string, unknown>)[key] = raw[key];
  }
  let resolved: ResolvedBalancerOptions;
  try {
    resolved = resolveBalancerOptions(balancer);
  } catch (error) {
    if (isShoalError(error)) throw new InvalidArgumentError(`${p}.${error.message}`, { cause: error });
    throw error;
  }
  let failureCodes: ReadonlySet<number> = new Set(DEFAULT_FAILURE_CODES.map((n) => STATUS_BY_NAME[n]!));
  if (raw.failureCodes !== undefined) {
    if (!Array.isArray(raw.failureCodes)) {
      throw new InvalidArgumentError(`${p}.failureCodes must be an array, got ${describeValue(raw.failureCodes)}`);
    }
    failureCodes = new Set(raw.failureCodes.map((c, i) => statusCode(`${p}.failureCodes[${i}]`, c)));
  }
  let hashHeader: string | undefined;
  if (policy === 'shoal_ring_hash' && raw.hashHeader === undefined) {
    throw new InvalidArgumentError(
      `${p}.hashHeader is required: the request metadata key whose value picks the endpoint, e.g. "x-user-id"`,
    );
  }
  if (raw.hashHeader !== undefined) {
    if (policy !== 'shoal_ring_hash') {
      throw new InvalidArgumentError(`${p}.hashHeader is only valid for shoal_ring_hash`);
    }
    assertString(`${p}.hashHeader`, raw.hashHeader, { maxLength: 128, pattern: HEADER_RE });
    hashHeader = raw.hashHeader;
  }
  return Object.freeze({
    policy,
    strategy,
    balancer: resolved,
    ...(typeof raw.localZone === 'string' ? { localZone: raw.localZone } : {}),
    ...(hashHeader !== undefined ? { hashHeader } : {}),
    failureCodes,
  });
}
