/**
 * The Shoal dispatcher over loopback: real HTTP servers registered in a real Consul HTTP API (@shoal/consul-dev,
 * or CONSUL_HTTP_ADDR), real undici requests.
 */
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { fetch as undiciFetch, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici';
import { createDispatcher } from '@shoal/http';
import { useBackends } from './support/backends.js';

describe('ShoalDispatcher', function () {
  this.timeout(20_000);
  const fx = useBackends();
  const { addBackend, dispatcher, get, spread } = fx;

  it('balances <service>.service.consul requests over the healthy instances (round_robin)', async () => {
    await Promise.all(['a', 'b', 'c'].map((n) => addBackend(n)));
    const d = dispatcher({ strategy: 'round_robin' });
    const counts = await spread(d, 90);
    assert.deepEqual(counts, { a: 30, b: 30, c: 30 });
  });

  it("works with fetch, and as the global dispatcher for Node's own fetch", async () => {
    await addBackend('a');
    const d = dispatcher();
    const res = await undiciFetch(`http://${fx.service}.service.consul/x`, { dispatcher: d });
    assert.equal(await res.text(), 'a');
    const previous = getGlobalDispatcher();
    setGlobalDispatcher(d);
    try {
      const res2 = await globalThis.fetch(`http://${fx.service}.service.consul/y`);
      assert.equal(await res2.text(), 'a');
    } finally {
      setGlobalDispatcher(previous);
    }
  });

  it('maps configured host names to services and passes other hosts through', async () => {
    const a = await addBackend('a');
    const d = dispatcher({ services: { 'web.internal': fx.service }, domain: false });
    const res = await request('http://web.internal/', { dispatcher: d });
    assert.equal(await res.body.text(), 'a');
    const direct = await request(`http://127.0.0.1:${a.port}/`, { dispatcher: d });
    assert.equal(await direct.body.text(), 'a');
    await assert.rejects(request(`http://${fx.service}.service.consul/`, { dispatcher: d }), /ENOTFOUND|EAI_AGAIN/);
  });

  it('retries an idempotent request on another instance when a connection fails', async () => {
    await addBackend('a');
    const dead = await addBackend('dead');
    dead.server.close();
    dead.server.closeAllConnections();
    const d = dispatcher({ strategy: 'round_robin', outlierDetection: false });
    for (let i = 0; i < 20; i++) assert.equal((await get(d)).body, 'a');
  });

  it('retries on the instance it tried when every other one is ejected or unavailable', async () => {
    let n = 0;
    // Every other request on `a` loses its connection before an answer.
    await addBackend('a', (_req, res, b) => (n++ % 2 === 0 ? res.socket?.destroy() : res.end(b.name)));
    await addBackend('b');
    const d = dispatcher({ strategy: 'round_robin', outlierDetection: false });
    await get(d);
    // `b` out (as an ejected or not-connected endpoint is): `a` is the only one to pick, and it was tried.
    d.balancerFor(fx.service)!.setAvailable(`${fx.service}-b`, false);
    n = 0;
    for (let i = 0; i < 4; i++) assert.equal((await get(d)).body, 'a');
  });

  it('sends a POST whose connection was refused (never sent) to another instance', async () => {
    const dead = await addBackend('dead');
    dead.server.close();
    await addBackend('a');
    const d = dispatcher({ strategy: 'round_robin', outlierDetection: false });
    for (let i = 0; i < 4; i++) {
      const res = await request(`http://${fx.service}.service.consul/`, { dispatcher: d, method: 'POST', body: 'x' });
      assert.equal(await res.body.text(), 'a');
    }
  });

  it('does not retry a POST that reached an instance; the error reaches the caller', async () => {
    await addBackend('cut', (req) => req.socket.destroy());
    await addBackend('a');
    const d = dispatcher({ strategy: 'round_robin', outlierDetection: false });
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, () =>
        request(`http://${fx.service}.service.consul/`, { dispatcher: d, method: 'POST', body: 'x' }),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    assert.ok(failed.length >= 1, 'a POST to the instance that cut the connection failed');
    assert.match(String((failed[0] as PromiseRejectedResult).reason), /other side closed|ECONNRESET|socket/i);
    for (const r of results) if (r.status === 'fulfilled') await r.value.body.dump();
    assert.equal(fx.backends[1]!.hits + fx.backends[0]!.hits, 4, 'no POST was sent twice');
  });

  it('retries an idempotent request answered 503 and returns the good answer', async () => {
    await addBackend('sick', (_req, res) => {
      res.statusCode = 503;
      res.end('sick');
    });
    await addBackend('a');
    const d = dispatcher({ strategy: 'round_robin', outlierDetection: false });
    for (let i = 0; i < 10; i++) assert.deepEqual(await get(d), { status: 200, body: 'a' });
  });

  it('stops retrying when the retry budget is spent', async () => {
    await addBackend('sick', (_req, res) => {
      res.statusCode = 503;
      res.end('sick');
    });
    await addBackend('sick2', (_req, res) => {
      res.statusCode = 503;
      res.end('sick');
    });
    const d = dispatcher({ retryBudget: { ratio: 0, minRetriesPerSecond: 0.1 }, outlierDetection: false });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await get(d)).status);
    assert.ok(statuses.every((s) => s === 503));
    const sickHits = fx.backends.reduce((n, b) => n + b.hits, 0);
    assert.ok(sickHits <= 11, `${sickHits} attempts for 10 requests: retries went past the budget`);
  });

  it('counts attempts, outcomes and retries in its metrics', async () => {
    await addBackend('sick', (_req, res) => {
      res.statusCode = 503;
      res.end('sick');
    });
    await addBackend('a');
    const registry = new Registry();
    const d = dispatcher({ strategy: 'round_robin', outlierDetection: false, registry });
    for (let i = 0; i < 4; i++) assert.equal((await get(d)).status, 200);
    const text = await registry.metrics();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    const attempts = value(new RegExp(`shoal_http_attempts_total\\{service="${fx.service}"\\} (\\d+)`));
    const failures = value(
      new RegExp(`shoal_http_responses_total\\{service="${fx.service}",outcome="failure"\\} (\\d+)`),
    );
    const retried = value(new RegExp(`shoal_http_retries_total\\{service="${fx.service}",result="retried"\\} (\\d+)`));
    assert.equal(attempts, 4 + failures, text);
    assert.equal(retried, failures);
    assert.ok(failures >= 1);
    assert.equal(
      value(new RegExp(`shoal_http_responses_total\\{service="${fx.service}",outcome="success"\\} (\\d+)`)),
      4,
    );
  });

  it('reads the x-shoal-load header into the balancer', async () => {
    await addBackend('a', (_req, res) => {
      res.setHeader('x-shoal-load', 'utilization=0.75, rps=40');
      res.end('a');
    });
    const d = dispatcher();
    await get(d);
    const snapshot = d.balancerFor(fx.service)!.endpoints()[0]!;
    assert.equal(snapshot.load?.utilization, 0.75);
    assert.equal(snapshot.load?.rps, 40);
  });

  it('sends less traffic to a slow instance with peak_ewma', async () => {
    await addBackend('slow', (_req, res, b) => setTimeout(() => res.end(b.name), 40));
    await addBackend('b');
    await addBackend('c');
    const d = dispatcher({ strategy: 'peak_ewma' });
    const counts = await spread(d, 300, 6);
    assert.ok((counts.slow ?? 0) < 30, JSON.stringify(counts));
  });

  it('keeps using the cached instances while Consul is down', async function () {
    await addBackend('a');
    await addBackend('b');
    const d = dispatcher();
    await spread(d, 10);
    if (fx.consul.isReal) this.skip();
    await fx.consul.close();
    const counts = await spread(d, 50, 4);
    assert.equal((counts.a ?? 0) + (counts.b ?? 0), 50);
  });

  it('fails with SHOAL_ERR_NO_ENDPOINTS for a service without instances', async () => {
    const d = dispatcher({ resolveTimeoutMs: 2000 });
    await assert.rejects(get(d), { code: 'SHOAL_ERR_NO_ENDPOINTS' });
  });

  it('fails with SHOAL_ERR_TIMEOUT when Consul cannot be reached for the first list', async function () {
    if (fx.consul.isReal) this.skip();
    await fx.consul.close();
    const d = dispatcher({ resolveTimeoutMs: 300 });
    await assert.rejects(get(d), { code: 'SHOAL_ERR_TIMEOUT' });
    await fx.freshConsul();
  });

  it('refuses requests after close() with SHOAL_ERR_CLOSED', async () => {
    await addBackend('a');
    const d = dispatcher();
    await get(d);
    await d.close();
    await assert.rejects(get(d), { code: 'SHOAL_ERR_CLOSED' });
  });

  it('validates its options, naming the option', () => {
    assert.throws(
      () => createDispatcher({ retry: { maxAttempts: 0 } }),
      /retry\.maxAttempts must be an integer between 1 and 10, got 0/,
    );
    assert.throws(() => createDispatcher({ strategy: 'nope' }), /nope/);
    assert.throws(() => createDispatcher({ services: { x: 'bad name' } }), /services\["x"\]\.service/);
    assert.throws(() => createDispatcher({ loadHeader: 'bad header' }), /loadHeader must be a string matching/);
    assert.throws(() => createDispatcher({ colour: 1 } as never), /unknown option "colour"/);
  });
});
