import assert from 'node:assert/strict';
import Consul from 'consul';
import { setup, statusOf } from './support.js';
import type { Fixture } from './support.js';

describe('consul-dev conformance: ACL token check', () => {
  let f: Fixture;
  beforeEach(async function () {
    f = await setup({ aclToken: 'root-secret' });
    if (f.tc.isReal && !f.tc.token) {
      await f.cleanup();
      this.skip(); // needs a real Consul with ACLs enabled (default deny) and CONSUL_HTTP_TOKEN set
    }
  });
  afterEach(async () => {
    if (f) await f.cleanup();
  });

  function client(token?: string): Consul {
    return new Consul({ host: f.tc.host, port: f.tc.port, ...(token ? { defaults: { token } } : {}) });
  }

  it('refuses a write without a token with 403 Permission denied', async () => {
    const anonymous = client();
    try {
      await assert.rejects(anonymous.agent.service.register({ name: f.name(), port: 1 }), (err: unknown) => {
        assert.equal(statusOf(err), 403);
        const body = String((err as { response?: { body?: unknown } }).response?.body);
        assert.match(body, /^Permission denied/);
        return true;
      });
    } finally {
      anonymous.destroy();
    }
  });

  it('refuses an unknown token with 403 ACL not found', async () => {
    const res = await f.raw('GET', '/v1/agent/services', undefined, { 'X-Consul-Token': 'not-the-token' });
    assert.equal(res.status, 403);
    assert.equal(res.text, 'ACL not found');
  });

  it('accepts the token from the X-Consul-Token header, ?token= and Authorization: Bearer', async () => {
    const token = f.tc.token!;
    const name = f.name();
    f.track(name);
    let res = await f.raw('PUT', '/v1/agent/service/register', JSON.stringify({ Name: name, Port: 1 }), {
      'X-Consul-Token': token,
    });
    assert.equal(res.status, 200);
    res = await f.raw(
      'PUT',
      `/v1/agent/service/register?token=${encodeURIComponent(token)}`,
      JSON.stringify({ Name: name, Port: 2 }),
      {},
    );
    assert.equal(res.status, 200);
    res = await f.raw('PUT', '/v1/agent/service/register', JSON.stringify({ Name: name, Port: 3 }), {
      Authorization: `Bearer ${token}`,
    });
    assert.equal(res.status, 200);
    const services = (await f.consul.agent.service.list()) as Record<string, { Port: number }>;
    assert.equal(services[name]?.Port, 3);
  });

  it('filters reads for the anonymous token instead of refusing them', async () => {
    const name = f.name();
    f.track(name);
    await f.consul.agent.service.register({ name, port: 1 });
    const res = await f.raw('GET', `/v1/health/service/${name}`, undefined, {});
    assert.equal(res.status, 200);
    assert.equal(res.text, '[]');
    const withToken = await f.raw('GET', `/v1/health/service/${name}`);
    assert.equal(withToken.json<unknown[]>().length, 1);
  });

  it('refuses KV writes and single-key reads for the anonymous token', async () => {
    const key = f.trackKey(f.name('kv'));
    assert.equal((await f.raw('PUT', `/v1/kv/${key}`, 'v', {})).status, 403);
    assert.equal((await f.raw('PUT', `/v1/kv/${key}`, 'v')).status, 200);
    assert.equal((await f.raw('GET', `/v1/kv/${key}`, undefined, {})).status, 403);
  });

  it('leaves status endpoints open', async () => {
    const res = await f.raw('GET', '/v1/status/leader', undefined, {});
    assert.equal(res.status, 200);
  });

  it('the real client with the token in defaults works end to end', async () => {
    const name = f.name();
    f.track(name);
    await f.consul.agent.service.register({ name, port: 1 });
    const entries = (await f.consul.health.service(name)) as unknown[];
    assert.equal(entries.length, 1);
  });
});
