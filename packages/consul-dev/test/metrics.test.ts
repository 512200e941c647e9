import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { startConsulDev, type ConsulDevServer } from '@shoal/consul-dev';
import { waitFor } from '../../../test/kit/index.js';

describe('consul-dev /metrics', () => {
  let server: ConsulDevServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const value = (text: string, series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it('counts requests by endpoint and code, and shows blocking queries, services, instances and sessions', async () => {
    server = await startConsulDev({ port: 0, registry: new Registry() });
    const { url } = server;
    for (const id of ['web-1', 'web-2']) {
      const res = await fetch(`${url}/v1/agent/service/register`, {
        method: 'PUT',
        body: JSON.stringify({ ID: id, Name: 'web', Port: 80 }),
      });
      assert.equal(res.status, 200);
    }
    await fetch(`${url}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'db', Port: 5432 }),
    });
    assert.equal((await fetch(`${url}/v1/nope`)).status, 404);
    const session = await fetch(`${url}/v1/session/create`, { method: 'PUT', body: '{}' });
    assert.equal(session.status, 200);
    const health = await fetch(`${url}/v1/health/service/web`);
    const index = health.headers.get('x-consul-index');
    await health.arrayBuffer();
    // A blocking query held open while we scrape.
    const abort = new AbortController();
    const blocked = fetch(`${url}/v1/health/service/web?index=${index}&wait=30s`, { signal: abort.signal }).catch(
      () => undefined,
    );
    const text = await waitFor(
      async () => {
        const t = await (await fetch(`${url}/metrics`)).text();
        return value(t, 'shoal_consul_dev_blocking_queries') === 1 && t;
      },
      { what: 'one open blocking query in /metrics' },
    );
    abort.abort();
    await blocked;
    assert.equal(value(text, 'shoal_consul_dev_services'), 2);
    assert.equal(value(text, 'shoal_consul_dev_service_instances'), 3);
    assert.equal(value(text, 'shoal_consul_dev_sessions'), 1);
    assert.equal(value(text, 'shoal_consul_dev_requests_total{endpoint="/v1/agent/service/register",code="200"}'), 3);
    assert.equal(value(text, 'shoal_consul_dev_requests_total{endpoint="unmatched",code="404"}'), 1);
    assert.equal(value(text, 'shoal_consul_dev_requests_total{endpoint="/v1/health/service/",code="200"}'), 1);
  });

  it('has no /metrics without a registry', async () => {
    server = await startConsulDev({ port: 0 });
    assert.equal((await fetch(`${server.url}/metrics`)).status, 404);
  });
});
