import assert from 'node:assert/strict';
import Consul from 'consul';
import { startTestConsul } from '../support/consul.js';
import { eventually } from './support.js';

describe('consul-dev conformance: restart (double only)', () => {
  it('comes back empty on the same port with a lower index, as a fresh Consul would', async function () {
    let tc = await startTestConsul();
    if (tc.isReal) this.skip(); // restarting needs control of the server process
    const consul = new Consul({ host: tc.host, port: tc.port });
    try {
      await consul.agent.service.register({ name: 'web', port: 1 });
      for (let i = 0; i < 5; i++) await consul.kv.set(`k${i}`, 'v');
      const before = await fetch(`${tc.url}/v1/health/service/web`);
      const indexBefore = Number(before.headers.get('x-consul-index'));
      await tc.close();
      tc = await startTestConsul({ port: tc.port });
      // A pooled keep-alive socket to the old process may still be picked once; clients retry, as here.
      const url = tc.url;
      const after = await eventually(() => fetch(`${url}/v1/health/service/web`));
      assert.equal(await after.text(), '[]');
      assert.ok(Number(after.headers.get('x-consul-index')) < indexBefore);
      assert.deepEqual(await eventually(() => consul.agent.service.list()), {}, 'the same client reconnects');
    } finally {
      consul.destroy();
      await tc.close();
    }
  });
});
