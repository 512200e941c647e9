import assert from 'node:assert/strict';
import http from 'node:http';
import { Registry } from 'prom-client';
import { createAgent, type Agent, type FastifyLike, type FastifyReplyLike } from '@shoal/agent';
import { closeServer, get, listen } from './support/http.js';
import { waitFor } from '../../../test/kit/index.js';

async function metricValue(registry: Registry, name: string): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values[0]?.value ?? Number.NaN;
}

describe('HTTP instrumentation', () => {
  let agent: Agent | undefined;
  let server: http.Server | undefined;
  let registry: Registry;

  beforeEach(() => {
    registry = new Registry();
  });

  afterEach(async () => {
    await agent?.close();
    if (server) await closeServer(server);
    agent = server = undefined;
  });

  function newAgent(port = 8080): Agent {
    agent = createAgent({ service: 'web', port, address: '127.0.0.1', registry, onDrained: () => {} });
    return agent;
  }

  it('counts requests, 5xx errors and in-flight through the node:http wrapper', async () => {
    const a = newAgent();
    let release: (() => void) | undefined;
    server = http.createServer(
      a.httpListener((req, res) => {
        if (req.url === '/fail') res.writeHead(503).end();
        else if (req.url === '/hold') release = () => res.end('late');
        else if (req.url === '/404') res.writeHead(404).end();
        else res.end('ok');
      }),
    );
    const port = await listen(server);
    await get(port, '/');
    await get(port, '/404');
    await get(port, '/fail');
    const held = get(port, '/hold');
    await waitFor(() => a.inFlight === 1, { what: 'one in flight' });
    const text = await registry.metrics();
    assert.match(text, /shoal_agent_in_flight_requests 1/);
    release!();
    await held;
    await waitFor(() => a.inFlight === 0, { what: 'none in flight' });
    assert.equal(await metricValue(registry, 'shoal_agent_requests_total'), 4);
    assert.equal(await metricValue(registry, 'shoal_agent_request_errors_total'), 1, 'a 404 is not an error');
    assert.match(await registry.metrics(), /shoal_agent_request_duration_seconds_count 4/);
  });

  it('counts a request once when both the wrapper and the Express middleware see it', async () => {
    const a = newAgent();
    const middleware = a.express();
    server = http.createServer(
      a.httpListener((req, res) => {
        // An Express-style chain: the middleware first, then the route.
        middleware(req, res, () => res.end('ok'));
      }),
    );
    const port = await listen(server);
    for (let i = 0; i < 5; i++) assert.equal((await get(port, '/')).status, 200);
    await waitFor(() => a.inFlight === 0, { what: 'idle' });
    assert.equal(await metricValue(registry, 'shoal_agent_requests_total'), 5);
  });

  it('instruments a server created with its handler, once even if instrumented twice', async () => {
    const a = newAgent();
    server = http.createServer((_req, res) => res.end('plain'));
    a.instrumentHttpServer(server);
    a.instrumentHttpServer(server);
    const port = await listen(server);
    assert.equal((await get(port, '/')).body, 'plain');
    await waitFor(() => a.inFlight === 0, { what: 'idle' });
    assert.equal(await metricValue(registry, 'shoal_agent_requests_total'), 1);
  });

  it('counts a response the client abandons as a failure', async () => {
    const a = newAgent();
    server = http.createServer(a.httpListener(() => {}));
    const port = await listen(server);
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false });
    req.on('error', () => {});
    await waitFor(() => a.inFlight === 1, { what: 'in flight' });
    req.destroy();
    await waitFor(() => a.inFlight === 0, { what: 'closed' });
    assert.equal(await metricValue(registry, 'shoal_agent_request_errors_total'), 1);
  });

  it('answers 503 with Retry-After and Connection: close to new requests while draining', async () => {
    const a = newAgent();
    let release: (() => void) | undefined;
    server = http.createServer(
      a.httpListener((req, res) => {
        if (req.url === '/hold') release = () => res.end('finished');
        else res.end('ok');
      }),
    );
    const port = await listen(server);
    const held = get(port, '/hold');
    await waitFor(() => a.inFlight === 1, { what: 'in flight' });
    const drained = a.drain(5000, 'test');
    await waitFor(() => a.state === 'draining', { what: 'draining' });
    const refused = await get(port, '/');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.headers.connection, 'close');
    release!();
    assert.equal((await held).body, 'finished', 'in-flight work completes');
    assert.deepEqual(await drained, { reason: 'test', timedOut: false, inFlight: 0 });
    assert.equal(await metricValue(registry, 'shoal_agent_refused_requests_total'), 1);
  });

  it('works as a Fastify plugin through the documented onRequest hook', async () => {
    const a = newAgent();
    const plugin = a.fastify();
    assert.equal(plugin[Symbol.for('skip-override')], true, 'applies to the whole app, like fastify-plugin');
    // A minimal host that runs onRequest hooks the way Fastify does: (request, reply, done), raw node objects.
    const hooks: Array<Parameters<FastifyLike['addHook']>[1]> = [];
    const host: FastifyLike = { addHook: (_name, hook) => hooks.push(hook) };
    await new Promise<void>((resolve, reject) => plugin(host, {}, (e) => (e ? reject(e) : resolve())));
    assert.equal(hooks.length, 1);
    server = http.createServer((req, res) => {
      const reply: FastifyReplyLike = {
        raw: res,
        code(c) {
          res.statusCode = c;
          return reply;
        },
        header(n, v) {
          res.setHeader(n, v);
          return reply;
        },
        send(payload) {
          res.end(payload as string);
        },
      };
      hooks[0]!({ raw: req }, reply, () => reply.code(200).send('routed'));
    });
    const port = await listen(server);
    assert.equal((await get(port, '/')).body, 'routed');
    await waitFor(() => a.inFlight === 0, { what: 'idle' });
    assert.equal(await metricValue(registry, 'shoal_agent_requests_total'), 1);
    void a.drain(1000);
    await waitFor(() => a.state !== 'ready', { what: 'draining' });
    const refused = await get(port, '/');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '1');
  });
});
