import {
  InvalidArgumentError,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertPositiveNumber,
  describeValue,
  isShoalError,
} from '@shoal/core';
import { Status } from './grpc-js-compat.js';
import { POLICY_NAMES, resolvePolicyConfig } from './policy-config.js';
import type { ShoalPolicyConfigJson, ShoalPolicyName } from './policy-config.js';

/**
 * Validates the `shoal_*` entries of a gRPC service config object and throws `InvalidArgumentError` naming the
 * field (`loadBalancingConfig[0].shoal_peak_ewma.slowStart.windowMs must be a positive integer, got -5`). Entries
 * for other policies are left to grpc-js.
 */
export function validateServiceConfigJson(config: unknown): void {
  assertObject('grpc.service_config', config);
  const list = config.loadBalancingConfig;
  if (list === undefined) return;
  if (!Array.isArray(list)) {
    throw new InvalidArgumentError(`loadBalancingConfig must be an array, got ${describeValue(list)}`);
  }
  list.forEach((entry: unknown, i) => {
    assertObject(`loadBalancingConfig[${i}]`, entry);
    for (const [name, value] of Object.entries(entry)) {
      if (!name.startsWith('shoal_')) continue;
      if (!(POLICY_NAMES as string[]).includes(name)) {
        throw new InvalidArgumentError(
          `loadBalancingConfig[${i}] names an unknown policy ${JSON.stringify(name)}; known Shoal policies: ${POLICY_NAMES.join(', ')}`,
        );
      }
      try {
        resolvePolicyConfig(name as ShoalPolicyName, value);
      } catch (error) {
        if (isShoalError(error)) throw new InvalidArgumentError(`loadBalancingConfig[${i}].${error.message}`);
        throw error;
      }
    }
  });
}

/** Retry settings `createClient` puts in the service config's `methodConfig` (gRPC retry policy, gRFC A6). */
export interface RetryConfig {
  /** Total attempts including the first (2-5). Default 3. */
  maxAttempts?: number;
  /** Status codes that trigger a retry. Default `['UNAVAILABLE']`. */
  retryableStatusCodes?: string[];
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  backoffMultiplier?: number;
  /** Method names (`{ service: 'pkg.Svc', method?: 'Get' }`) the policy applies to. Default: all methods. */
  methods?: Array<{ service?: string; method?: string }>;
}

/**
 * Hedging settings `createClient` puts in the service config's `methodConfig` (gRPC hedging policy, gRFC A6, which
 * grpc-js implements): after `delayMs` without an answer another attempt starts, up to `maxAttempts` in all; the
 * first answer wins and the others are cancelled. Only for idempotent methods: list them in `methods`.
 */
export interface HedgingConfig {
  /** The idempotent methods to hedge (`{ service: 'pkg.Svc', method?: 'Get' }`). Required. */
  methods: Array<{ service?: string; method?: string }>;
  /** Total attempts including the first (2-5). Default 2. */
  maxAttempts?: number;
  /** Time without an answer before the next attempt starts, ms. Default 100. */
  delayMs?: number;
  /** Status codes after which the next attempt starts at once instead of failing the call. Default `['UNAVAILABLE']`. */
  nonFatalStatusCodes?: string[];
}

const STATUS_NAMES = Object.keys(Status).filter((k) => Number.isNaN(Number(k)));

function methodList(path: string, methods: unknown): void {
  if (!Array.isArray(methods) || methods.length === 0) {
    throw new InvalidArgumentError(
      `${path} must be a non-empty array of { service, method? }, got ${describeValue(methods)}`,
    );
  }
  methods.forEach((m: unknown, i) => {
    assertObject(`${path}[${i}]`, m);
    assertKnownKeys(`${path}[${i}]`, m, ['service', 'method']);
  });
}

/** Validates a hedging config; errors name the field (`hedging.delayMs must be ...`). */
export function resolveHedgingConfig(hedging: HedgingConfig): void {
  assertObject('hedging', hedging as unknown);
  assertKnownKeys('hedging', hedging as unknown as Record<string, unknown>, [
    'methods',
    'maxAttempts',
    'delayMs',
    'nonFatalStatusCodes',
  ]);
  methodList('hedging.methods', hedging.methods);
  if (hedging.maxAttempts !== undefined) assertInteger('hedging.maxAttempts', hedging.maxAttempts, 2, 5);
  if (hedging.delayMs !== undefined) assertInteger('hedging.delayMs', hedging.delayMs, 1, 3_600_000);
  if (hedging.nonFatalStatusCodes !== undefined) {
    if (!Array.isArray(hedging.nonFatalStatusCodes)) {
      throw new InvalidArgumentError(
        `hedging.nonFatalStatusCodes must be an array of status names, got ${describeValue(hedging.nonFatalStatusCodes)}`,
      );
    }
    hedging.nonFatalStatusCodes.forEach((c, i) => assertOneOf(`hedging.nonFatalStatusCodes[${i}]`, c, STATUS_NAMES));
  }
}

/** Validates a retry config; errors name the field (`retry.maxAttempts must be an integer between 2 and 5, got 1`). */
export function resolveRetryConfig(retry: RetryConfig): void {
  assertObject('retry', retry as unknown);
  assertKnownKeys('retry', retry as Record<string, unknown>, [
    'maxAttempts',
    'retryableStatusCodes',
    'initialBackoffMs',
    'maxBackoffMs',
    'backoffMultiplier',
    'methods',
  ]);
  if (retry.maxAttempts !== undefined) assertInteger('retry.maxAttempts', retry.maxAttempts, 2, 5);
  if (retry.retryableStatusCodes !== undefined) {
    if (!Array.isArray(retry.retryableStatusCodes) || retry.retryableStatusCodes.length === 0) {
      throw new InvalidArgumentError(
        `retry.retryableStatusCodes must be a non-empty array of status names, got ${describeValue(retry.retryableStatusCodes)}`,
      );
    }
    retry.retryableStatusCodes.forEach((c, i) => assertOneOf(`retry.retryableStatusCodes[${i}]`, c, STATUS_NAMES));
  }
  if (retry.initialBackoffMs !== undefined) assertPositiveNumber('retry.initialBackoffMs', retry.initialBackoffMs);
  if (retry.maxBackoffMs !== undefined) assertPositiveNumber('retry.maxBackoffMs', retry.maxBackoffMs);
  if (retry.backoffMultiplier !== undefined) assertPositiveNumber('retry.backoffMultiplier', retry.backoffMultiplier);
  if (retry.methods !== undefined && !Array.isArray(retry.methods)) {
    throw new InvalidArgumentError(`retry.methods must be an array, got ${describeValue(retry.methods)}`);
  }
}

/** Builds the `grpc.service_config` JSON string for one Shoal policy (and an optional retry policy). */
export function buildServiceConfig(
  policy: ShoalPolicyName,
  policyConfig: ShoalPolicyConfigJson = {},
  retry?: RetryConfig | false,
  hedging?: HedgingConfig | false,
): string {
  const config: Record<string, unknown> = { loadBalancingConfig: [{ [policy]: policyConfig }] };
  const methodConfig: unknown[] = [];
  if (hedging) {
    resolveHedgingConfig(hedging);
    methodConfig.push({
      name: hedging.methods,
      hedgingPolicy: {
        maxAttempts: hedging.maxAttempts ?? 2,
        hedgingDelay: `${(hedging.delayMs ?? 100) / 1000}s`,
        nonFatalStatusCodes: hedging.nonFatalStatusCodes ?? ['UNAVAILABLE'],
      },
    });
  }
  if (retry) {
    resolveRetryConfig(retry);
    const maxAttempts = retry.maxAttempts ?? 3;
    // A method has a retry policy or a hedging policy, not both (A6): hedged methods keep their hedging policy.
    methodConfig.push({
      name: retry.methods ?? [{}],
      retryPolicy: {
        maxAttempts,
        initialBackoff: `${(retry.initialBackoffMs ?? 50) / 1000}s`,
        maxBackoff: `${(retry.maxBackoffMs ?? 1000) / 1000}s`,
        backoffMultiplier: retry.backoffMultiplier ?? 2,
        retryableStatusCodes: retry.retryableStatusCodes ?? ['UNAVAILABLE'],
      },
    });
  }
  if (methodConfig.length > 0) config.methodConfig = methodConfig;
  validateServiceConfigJson(config);
  return JSON.stringify(config);
}
