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

const STATUS_NAMES = Object.keys(Status).filter((k) => Number.isNaN(Number(k)));

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
): string {
  const config: Record<string, unknown> = { loadBalancingConfig: [{ [policy]: policyConfig }] };
  if (retry) {
    resolveRetryConfig(retry);
    const maxAttempts = retry.maxAttempts ?? 3;
    config.methodConfig = [
      {
        name: retry.methods ?? [{}],
        retryPolicy: {
          maxAttempts,
          initialBackoff: `${(retry.initialBackoffMs ?? 50) / 1000}s`,
          maxBackoff: `${(retry.maxBackoffMs ?? 1000) / 1000}s`,
          backoffMultiplier: retry.backoffMultiplier ?? 2,
          retryableStatusCodes: retry.retryableStatusCodes ?? ['UNAVAILABLE'],
        },
      },
    ];
  }
  validateServiceConfigJson(config);
  return JSON.stringify(config);
}
