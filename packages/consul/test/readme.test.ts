import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONSUL_ERROR_CODES } from '@shoal/consul';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('documents exactly the error codes the package produces, with the same meaning', () => {
    const section = readme.split('## Error codes')[1]!.split('\n## ')[0]!;
    const rows = [...section.matchAll(/^\| `(SHOAL_[A-Z_]+)`\s*\| (.+?)\s*\|$/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(Object.fromEntries(rows), { ...CONSUL_ERROR_CODES });
  });

  it('lists every metric the package registers', async () => {
    const { Registry } = await import('prom-client');
    const { ServiceRegistration, ServiceWatcher } = await import('@shoal/consul');
    const registry = new Registry();
    const reg = new ServiceRegistration({ service: 'x', port: 1, address: '127.0.0.1', registry });
    const watcher = new ServiceWatcher({ registry });
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
    const documented = [
      ...readme
        .split('## Metrics')[1]!
        .split('\n## ')[0]!
        .matchAll(/^\| `(shoal_[a-z_]+)`\s*\|/gm),
    ]
      .map((m) => m[1])
      .sort();
    assert.deepEqual(documented, names);
    await reg.close();
    await watcher.close();
  });
});
