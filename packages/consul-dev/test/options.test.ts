import assert from 'node:assert/strict';
import { resolveConsulDevOptions, startConsulDev } from '@shoal/consul-dev';

describe('resolveConsulDevOptions', () => {
  it('applies defaults', () => {
    const o = resolveConsulDevOptions();
    assert.equal(o.host, '127.0.0.1');
    assert.equal(o.port, 8500);
    assert.equal(o.maxBodyBytes, 524288);
    assert.equal(o.aclToken, undefined);
    assert.ok(Object.isFrozen(o));
  });

  it('names the option and the value it rejects', () => {
    assert.throws(() => resolveConsulDevOptions({ port: -1 }), /port must be an integer between 0 and 65535, got -1/);
    assert.throws(() => resolveConsulDevOptions({ maxBodyBytes: 0 }), /maxBodyBytes must be a positive integer, got 0/);
    assert.throws(() => resolveConsulDevOptions({ aclToken: '' }), /aclToken must be a non-empty string/);
    assert.throws(() => resolveConsulDevOptions({ host: 5 as never }), /host must be a non-empty string, got 5/);
    assert.throws(() => resolveConsulDevOptions({ prot: 1 } as never), /unknown option "prot"/);
  });

  it('startConsulDev rejects bad options before listening, and a busy port with the listen error', async () => {
    await assert.rejects(startConsulDev({ port: 70000 }), { code: 'SHOAL_ERR_INVALID_ARGUMENT' });
    const first = await startConsulDev({ port: 0 });
    try {
      await assert.rejects(startConsulDev({ port: first.port }), { code: 'EADDRINUSE' });
    } finally {
      await first.close();
    }
  });
});
