import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ServiceWatcher } from '@shoal/consul';
import { healthEntry, startScriptedConsul, type ScriptedConsul } from './support/scripted-consul.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/tls/${name}`, import.meta.url), 'utf8');

describe('Consul connection (TLS, token, datacenter)', () => {
  let peer: ScriptedConsul | undefined;
  let watcher: ServiceWatcher | undefined;

  afterEach(async () => {
    await watcher?.close();
    await peer?.close();
    watcher = undefined;
    peer = undefined;
  });

  const tls = () => ({ key: fixture('server.key'), cert: fixture('server.pem') });
  const answer = () => ({ headers: { 'x-consul-index': '4' }, body: [healthEntry('a')] });

  it('talks https to a Consul whose certificate the configured CA signed', async () => {
    peer = await startScriptedConsul(answer, tls());
    watcher = new ServiceWatcher({ consul: { url: peer.url, ca: fixture('ca.pem'), token: 't0k', datacenter: 'dc7' } });
    const list = await watcher.watch('orders').ready();
    assert.equal(list[0]?.id, 'a');
    const req = peer.requests[0]!;
    assert.equal(req.headers['x-consul-token'], 't0k');
    assert.equal(req.query.get('token'), null, 'the token only travels in the header');
    assert.equal(req.query.get('dc'), 'dc7');
  });

  it('refuses a certificate it cannot verify, with a retryable unavailable error', async () => {
    peer = await startScriptedConsul(answer, tls());
    watcher = new ServiceWatcher({ consul: { url: peer.url }, backoff: { baseMs: 1000, capMs: 1000 } });
    const w = watcher.watch('orders');
    const error = await new Promise<Error & { code?: string; retryable?: boolean }>((resolve) => w.onError(resolve));
    assert.equal(error.code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');
    assert.match(error.message, /certificate|self.signed|UNABLE_TO_VERIFY/i);
    assert.equal(peer.requests.length, 0);
  });
});
