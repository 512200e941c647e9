import assert from 'node:assert/strict';
import { POLICY_NAMES, buildServiceConfig, validateServiceConfigJson } from '@shoal/grpc';
import { resolvePolicyConfig } from '@shoal/grpc/internal';

describe('policy config', () => {
  it('accepts an empty config for every policy but ring_hash', () => {
    for (const name of POLICY_NAMES) {
      if (name === 'shoal_ring_hash') continue;
      const resolved = resolvePolicyConfig(name, {});
      assert.equal(resolved.policy, name);
      assert.ok(resolved.failureCodes.has(14), 'UNAVAILABLE counts as a failure by default');
    }
    assert.equal(resolvePolicyConfig('shoal_ring_hash', { hashHeader: 'x-user' }).hashHeader, 'x-user');
  });

  it('passes balancer options through and validates them, naming the field', () => {
    const r = resolvePolicyConfig('shoal_peak_ewma', {
      localZone: 'eu-west-1a',
      slowStart: { windowMs: 5000 },
      outlierDetection: false,
      strategyOptions: { decayMs: 5000 },
    });
    assert.equal(r.balancer.strategy, 'peak_ewma');
    assert.equal(r.balancer.localZone, 'eu-west-1a');
    assert.equal(r.balancer.outlierDetection, false);
    assert.throws(
      () => resolvePolicyConfig('shoal_peak_ewma', { slowStart: { windowMs: -5 } }),
      /shoal_peak_ewma\.slowStart\.windowMs .*-5/,
    );
    assert.throws(
      () => resolvePolicyConfig('shoal_least_request', { outlierDetection: { maxEjectionPercent: 150 } }),
      /shoal_least_request\.outlierDetection\.maxEjectionPercent/,
    );
    assert.throws(() => resolvePolicyConfig('shoal_random', { colour: 1 }), /unknown option "colour"/);
    assert.throws(
      () => resolvePolicyConfig('shoal_random', { failureCodes: ['NOPE'] }),
      /failureCodes\[0\] must be a gRPC status/,
    );
    assert.throws(() => resolvePolicyConfig('shoal_random', { hashHeader: 'x' }), /only valid for shoal_ring_hash/);
    assert.throws(
      () => resolvePolicyConfig('shoal_ring_hash', { hashHeader: 'X Bad' }),
      /hashHeader must be a string matching/,
    );
  });

  it('validates the shoal entries of a whole service config', () => {
    validateServiceConfigJson({ loadBalancingConfig: [{ round_robin: {} }, { shoal_random: {} }] });
    assert.throws(
      () =>
        validateServiceConfigJson({ loadBalancingConfig: [{ round_robin: {} }, { shoal_random: { slowStart: 3 } }] }),
      /loadBalancingConfig\[1\]\.shoal_random\.slowStart/,
    );
    assert.throws(
      () => validateServiceConfigJson({ loadBalancingConfig: [{ shoal_typo: {} }] }),
      /unknown policy "shoal_typo"/,
    );
  });

  it('builds a service config with a retry policy grpc-js accepts', () => {
    const json = JSON.parse(buildServiceConfig('shoal_round_robin', {}, { maxAttempts: 4 }));
    assert.deepEqual(json.loadBalancingConfig, [{ shoal_round_robin: {} }]);
    assert.equal(json.methodConfig[0].retryPolicy.maxAttempts, 4);
    assert.deepEqual(json.methodConfig[0].retryPolicy.retryableStatusCodes, ['UNAVAILABLE']);
  });
});
