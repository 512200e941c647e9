/**
 * Hostile gRPC service configs (issue #18's property suite): whatever a `shoal_*` entry of `loadBalancingConfig`
 * holds — wrong types, NaN, huge or negative numbers, unknown keys, deep nesting — validation either accepts it or
 * throws `SHOAL_ERR_INVALID_ARGUMENT` naming the policy and the field; never a TypeError, RangeError or a hang.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isShoalError } from '@shoal/core';
import { POLICY_NAMES, validateServiceConfigJson } from '@shoal/grpc';
import { POLICY_CONFIG_KEYS, resolvePolicyConfig } from '@shoal/grpc/internal';

const KEYS = [
  ...POLICY_CONFIG_KEYS,
  // nested options of the balancer
  'windowMs',
  'aggression',
  'minWeightPercent',
  'consecutiveFailures',
  'intervalMs',
  'baseEjectionMs',
  'maxEjectionMs',
  'maxEjectionPercent',
  'successRateEjection',
  'failurePercentageEjection',
  'stdevFactor',
  'enforcementPercentage',
  'minimumHosts',
  'requestVolume',
  'ratio',
  'ttlMs',
  'minRetriesPerSecond',
  'minHealthyPercent',
  'spilloverLoadFactor',
  'decayMs',
  '__proto__',
  'constructor',
];

const leaf = fc.oneof(
  fc.constantFrom(NaN, Infinity, -Infinity, -1, 0, 1, 0.5, 2 ** 53, -(2 ** 31), 1e308, '', 'UNAVAILABLE', 'x-user'),
  fc.integer(),
  fc.double(),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
);
const { value: hostile } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string()), tie('value'), { maxKeys: 5 }),
  ),
}));

function clearError(error: unknown, prefix: string): void {
  assert.ok(isShoalError(error), `not a Shoal error: ${String(error)}`);
  assert.equal(error.code, 'SHOAL_ERR_INVALID_ARGUMENT', String(error));
  assert.ok(error.message.startsWith(prefix), `${error.message} (expected to start with ${prefix})`);
  assert.ok(error.message.length < 2000, 'the message quotes a bounded part of the input');
}

describe('hostile gRPC service configs (fast-check)', () => {
  it('resolvePolicyConfig accepts a config or names the policy and field, for every policy', () => {
    fc.assert(
      fc.property(fc.constantFrom(...POLICY_NAMES), hostile, (policy, json) => {
        try {
          resolvePolicyConfig(policy, json);
        } catch (error) {
          clearError(error, policy);
        }
      }),
      { seed: 18, numRuns: 600 },
    );
  });

  it('validateServiceConfigJson accepts a service config or names the loadBalancingConfig entry', () => {
    const entry = fc.dictionary(
      fc.oneof(fc.constantFrom(...POLICY_NAMES, 'shoal_nope', 'round_robin'), fc.string()),
      hostile,
      {
        maxKeys: 2,
      },
    );
    const config = fc.oneof(
      hostile,
      fc.record({ loadBalancingConfig: fc.oneof(hostile, fc.array(fc.oneof(entry, hostile), { maxLength: 3 })) }),
    );
    fc.assert(
      fc.property(config, (c) => {
        try {
          validateServiceConfigJson(c);
        } catch (error) {
          assert.ok(isShoalError(error), `not a Shoal error: ${String(error)}`);
          assert.equal(error.code, 'SHOAL_ERR_INVALID_ARGUMENT', String(error));
          assert.match(error.message, /^(grpc\.service_config|loadBalancingConfig)/);
        }
      }),
      { seed: 19, numRuns: 600 },
    );
  });
});
