/**
 * The Shoal dispatcher over loopback: real HTTP servers registered in a real Consul HTTP API (@shoal/consul-dev,
 * or CONSUL_HTTP_ADDR), real undici requests.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { fetch as undiciFetch, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici';
import { ServiceRegistration } from '@shoal/consul';
import { createDispatcher } from '@shoal/http';
import type { ShoalDispatcher, ShoalDispatcherOptions } from '@shoal/http';
import { startTestConsul } from '../../../test/support/consul.js';
import type { TestConsul } from '../../../test/support/consul.js';

interface Backend {
  name: string;
  server: Server;
  port: number;
  hits: number;
  methods: string[];
  handler: (req: IncomingMessage, res: ServerResponse, b: Backend) => void;
  registration?: ServiceRegistration;
}

function defaultHandler(_req: IncomingMessage, res: ServerResponse, b: Backend): void {
  res.setHeader('content-type', 'text/plain');
  res.end(b.name);
}

describe('ShoalDispatcher', function () {
  this.timeout(20_000);
  let consul: TestConsul;
  let backends: Backend[] = [];
  let dispatchers: ShoalDispatcher[] = [];
  let service: string;
  let counter = 0;

  beforeEach(async () => {
    consul = await startTestConsul();
    service = `web-${++counter}-${process.pid}`;
  });

  afterEach(async () => {
    await Promise.all(dispatchers.map((d) => d.close()));
    dispatchers = [];
    await Promise.all(
      backends.map(async (b) => {
        await b.registration?.close().catch(() => {});
        b.server.closeAllConnections();
        await new Promise<void>((r) => b.server.close(() => r()));
      }),
    );
    backends = [];
    await consul.close();
  });

  async function addBackend(name: string, handler = defaultHandler, register = true): Promise<Backend> {
    const backend = { name, hits: 0, methods: [], handler } as unknown as Backend;
    backend.server = createServer((req, res) => {
      backend.hits++;
      backend.methods.push(req.method ?? '');
      req.resume();
      req.on('end', () => backend.handler(req, res, backend));
    });
    await new Promise<void>((r) => backend.server.listen(0, '127.0.0.1', () => r()));
    backend.port = (backend.server.address() as AddressInfo).port;
    backends.push(backend);
    if (register) {
      backend.registration = new ServiceRegistration({
        consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
        service,
        id: `${service}-${name}`,
        address: '127.0.0.1',
        port: backend.port,
        check: { ttlMs: 30_000 },
      });
      await backend.registration.register();
    }
    return backend;
  }

  function dispatcher(options: ShoalDispatcherOptions = {}): ShoalDispatcher {
    const d = createDispatcher({
      consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
      slowStart: false,
      registry: new Registry(),
      ...options,
    });
    dispatchers.push(d);
    return d;
  }

  async function get(d: ShoalDispatcher, path = '/', method = 'GET'): Promise<{ status: number; body: string }> {
    const res = await request(`http://${service}.service.consul${path}`, { dispatcher: d, method: method as 'GET' });
    return { status: res.statusCode, body: await res.body.text() };
  }

  async function spread(d: ShoalDispatcher, n: number, concurrency = 1): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          next++;
          const { body } = await get(d);
          counts[body] = (counts[body] ?? 0) + 1;
        }
      }),
    );
    return counts;
  }

  it('balances <service>.service.consul requests over the healthy instances (round_robin)', async () => {
    await Promise.all(['a', 'b', 'c'].map((n) => addBackend(n)));
    const d = dispatcher({ strategy: 'round_robin' });
    const counts = await spread(d, 90);
    assert.deepEqual(counts, { a: 30, b: 30, c: 30 });
  });

  it("works with fetch, and as the global dispatcher for Node's own fetch", async () => {
    await addBackend('a');
    const d = dispatcher();
    const res = await undiciFetch(`http://${service}.service.consul/x`, { dispatcher: d });
    assert.equal(await res.text(), 'a');
    const previous = getGlobalDispatcher();
    setGlobalDispatcher(d);
    try {
      const res2 = await globalThis.fetch(`http://${service}.service.consul/y`);
      assert.equal(await res2.text(), 'a');
    } finally {
      setGlobalDispatcher(previous);
    }
  });

  it('maps configured host names to services and passes other hosts through', async () => {
    const a = await addBackend('a');
    const d = dispatcher({ services: { 'web.internal': service }, domain: false });
    const res = await request('http://web.internal/', { dispatcher: d });
    assert.equal(await res.body.text(), 'a');
    const direct = await request(`http://127.0.0.1:${a.port}/`, { dispatcher: d });
    assert.equal(await direct.body.text(), 'a');
    await assert.rejects(request(`http://${service}.service.consul/`, { dispatcher: d }), /ENOTFOUND|EAI_AGAIN/);
  });

  it('retries an idempotent request on another instance when a connection fails', async () => {
    await addBackend('a');
    const dead = await addBackend('dead');
    dead.server.close();
    dead.server.closeAllConnections();
    const d = dispatcher({ strategy: 'round_robin', outlierDetection: false });
    for (let i = 0; i < 20; i++) assert.equal((await get(d)).body, 'a');
  });

  it('does not retry a POST; the error reaches the caller', async () => {
    const dead = await addBackend('dead');
    dead.server.close();
    await addBackend('a');
    const d = dispatcher({ strategy: 'round_robin', outlierDetection: false });
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, () =>
        request(`http://${service}.service.consul/`, { dispatcher: d, method: 'POST', body: 'x' }),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    assert.ok(failed.length >= 1, 'a POST to the dead instance failed');
    assert.match(String((failed[0] as PromiseRejectedResult).reason), /ECONNREFUSED/);
    for (const r of results) if (r.status === 'fulfilled') await r.value.body.dump();
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
    const sickHits = backends.reduce((n, b) => n + b.hits, 0);
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
    const attempts = value(new RegExp(`shoal_http_attempts_total\\{service="${service}"\\} (\\d+)`));
    const failures = value(new RegExp(`shoal_http_responses_total\\{service="${service}",outcome="failure"\\} (\\d+)`));
    const retried = value(new RegExp(`shoal_http_retries_total\\{service="${service}",result="retried"\\} (\\d+)`));
    assert.equal(attempts, 4 + failures, text);
    assert.equal(retried, failures);
    assert.ok(failures >= 1);
    assert.equal(value(new RegExp(`shoal_http_responses_total\\{service="${service}",outcome="success"\\} (\\d+)`)), 4);
  });

  it('reads the x-shoal-load header into the balancer', async () => {
    await addBackend('a', (_req, res) => {
      res.setHeader('x-shoal-load', 'utilization=0.75, rps=40');
      res.end('a');
    });
    const d = dispatcher();
    await get(d);
    const snapshot = d.balancerFor(service)!.endpoints()[0]!;
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
    if (consul.isReal) this.skip();
    await consul.close();
    const counts = await spread(d, 50, 4);
    assert.equal((counts.a ?? 0) + (counts.b ?? 0), 50);
  });

  it('fails with SHOAL_ERR_NO_ENDPOINTS for a service without instances', async () => {
    const d = dispatcher({ resolveTimeoutMs: 2000 });
    await assert.rejects(get(d), { code: 'SHOAL_ERR_NO_ENDPOINTS' });
  });

  it('fails with SHOAL_ERR_TIMEOUT when Consul cannot be reached for the first list', async function () {
    if (consul.isReal) this.skip();
    await consul.close();
    const d = dispatcher({ resolveTimeoutMs: 300 });
    await assert.rejects(get(d), { code: 'SHOAL_ERR_TIMEOUT' });
    consul = await startTestConsul();
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
