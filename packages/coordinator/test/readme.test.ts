import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '@shoal/core';
import { ROLLOUT_ERROR_CODES } from '@shoal/coordinator';

const PKG = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const CLASS_CODES: Record<string, string> = {
  ConfigError: 'SHOAL_ERR_CONFIG',
  ActuatorError: 'SHOAL_ERR_ACTUATOR',
  InvalidArgumentError: 'SHOAL_ERR_INVALID_ARGUMENT',
  ClosedError: 'SHOAL_ERR_CLOSED',
  TimeoutError: 'SHOAL_ERR_TIMEOUT',
  ConsulUnavailableError: 'SHOAL_ERR_CONSUL_UNAVAILABLE',
  ConsulPermissionError: 'SHOAL_ERR_CONSUL_PERMISSION_DENIED',
  ConsulRequestError: 'SHOAL_ERR_CONSUL_REQUEST',
  PrometheusQueryError: 'SHOAL_ERR_EXTERNAL_METRIC',
};

describe('README', () => {
  const readme = readFileSync(join(PKG, 'README.md'), 'utf8');
  const table = new Set([...readme.matchAll(/^\| `(SHOAL_ERR_[A-Z_]+)` +\|/gm)].map((m) => m[1]));

  it('documents every error code the sources can throw, and no other', () => {
    const thrown = new Set<string>();
    for (const file of sources(join(PKG, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const [cls, code] of Object.entries(CLASS_CODES))
        if (new RegExp(`new ${cls}\\(`).test(text)) thrown.add(code);
      for (const m of text.matchAll(/new RolloutError\(\s*'(SHOAL_ERR_ROLLOUT_[A-Z_]+)'/g)) thrown.add(m[1]!);
    }
    // withTimeout() throws TimeoutError on the coordinator's behalf.
    thrown.add('SHOAL_ERR_TIMEOUT');
    // ConsulKv (@shoal/consul) throws these on the coordinator's behalf (KV, sessions, leader election).
    for (const code of [
      'SHOAL_ERR_CONSUL_UNAVAILABLE',
      'SHOAL_ERR_CONSUL_PERMISSION_DENIED',
      'SHOAL_ERR_CONSUL_REQUEST',
    ])
      thrown.add(code);
    assert.deepEqual([...table].sort(), [...thrown].sort());
    for (const code of table)
      assert.ok(code! in ERROR_CODES || code! in ROLLOUT_ERROR_CODES, `${code} is a known code`);
    assert.deepEqual(
      Object.keys(ROLLOUT_ERROR_CODES).filter((c) => !thrown.has(c)),
      [],
      'every rollout code is thrown somewhere',
    );
  });

  it('lists every metric the coordinator registers', async () => {
    const { Registry } = await import('prom-client');
    const { createCoordinatorMetrics } = await import('@shoal/coordinator/internal');
    const registry = new Registry();
    createCoordinatorMetrics(registry);
    for (const m of registry.getMetricsAsArray()) assert.ok(readme.includes(`\`${m.name}\``), `${m.name} documented`);
  });
});
