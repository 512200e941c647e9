import assert from 'node:assert/strict';
import http from 'node:http';
import { Registry } from 'prom-client';
import { ManualClock } from '@shoal/core';
import { createAgent, type Agent, type AgentState, type DrainResult } from '@shoal/agent';
import { startTestConsul, type TestConsul } from '../../../test/support/consul.js';
import { startTestCoordinator, type TestCoordinator } from './support/coordinator.js';
import { closeServer, get, listen } from './support/http.js';
import { waitFor } from '../../../test/kit/index.js';

describe('Agent', () => {
  const agents: Agent[] = [];
  const servers: http.Server[] = [];
  let coordinator: TestCoordinator | undefined;
  let consul: TestConsul | undefined;

  afterEach(async () => {
    for (const a of agents.splice(0)) await a.close();
    for (const s of servers.splice(0)) await closeServer(s);
    await coordinator?.close();
    await consul?.close();
    coordinator = consul = undefined;
  });

  /** A service on node:http whose handler takes `ms` per request, instrumented by its own agent. */
  async function service(
    name: string,
    extra: Partial<Parameters<typeof createAgent>[0]> = {},
  ): Promise<{ agent: Agent; port: number; drained: Promise<DrainResult> }> {
    const server = http.createServer();
    servers.push(server);
    const port = await listen(server);
    let onDrained!: (r: DrainResult) => void;
    const drained = new Promise<DrainResult>((resolve) => (onDrained = resolve));
    const agent = createAgent({
      service: 'orders',
      port,
      address: '127.0.0.1',
      instanceId: name,
      registry: new Registry(),
      reportIntervalMs: 100,
      minReportIntervalMs: 50,
      onDrained,
      ...extra,
    });
    agents.push(agent);
    server.on(
      'request',
      agent.httpListener((req, res) => {
        const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
        setTimeout(() => res.end(name), ms);
      }),
    );
    agent.instrumentHttpServer(server); // lets the drain close it; requests stay counted once
    await agent.start();
    return { agent, port, drained };
  }

  it('drains on a coordinator directive under load with zero failed requests at the client', async () => {
    coordinator = await startTestCoordinator({ token: 't' });
    const a = await service('a', { coordinator: { url: coordinator.url, token: 't', confirmAfterMs: 100 } });
    const b = await service('b');
    await waitFor(() => coordinator!.openStreams() === 1, { what: 'a connected' });
    const keepAlive = { a: new http.Agent({ keepAlive: true }), b: new http.Agent({ keepAlive: true }) };
    const outcome = { a: 0, b: 0, retried: 0, failures: [] as string[] };
    let stop = false;
    // Each worker plays a client with discovery: it sends to `a` while `a` is listed (ready), and, like a
    // balancer, retries elsewhere a request refused with 503 (which the server guarantees it did not process).
    const worker = async () => {
      while (!stop) {
        const target = a.agent.ready ? 'a' : 'b';
        try {
          let res = await get(target === 'a' ? a.port : b.port, '/?ms=30', keepAlive[target]);
          if (res.status === 503) {
            outcome.retried++;
            res = await get(b.port, '/?ms=30', keepAlive.b);
          }
          if (res.status !== 200) outcome.failures.push(`status ${res.status}`);
          else outcome[res.body as 'a' | 'b']++;
        } catch (error) {
          outcome.failures.push((error as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    await waitFor(() => outcome.a >= 100, { what: 'load on a' });
    const inFlightAtDrain = a.agent.inFlight;
    assert.equal(coordinator.send({ drain: { deadlineMs: 5000, reason: 'scale-down' } }), 1);
    const result = await a.drained;
    const servedByAAtDrain = outcome.a;
    await waitFor(() => outcome.b >= 100, { what: 'load moved to b' });
    stop = true;
    await Promise.all(workers);
    keepAlive.a.destroy();
    keepAlive.b.destroy();

    assert.deepEqual(outcome.failures, []);
    assert.deepEqual(result, { reason: 'scale-down', timedOut: false, inFlight: 0 });
    assert.ok(inFlightAtDrain > 0, 'the drain started with requests in flight');
    assert.equal(outcome.a, servedByAAtDrain, 'a served nothing after its drain ended');
    assert.equal(a.agent.state, 'drained');
    assert.ok(!servers[0]!.listening, 'the drained server stopped listening');
    const last = coordinator.reports[coordinator.reports.length - 1]!;
    assert.equal(last.ready, false, 'the last report says not ready');
  });

  it('drains on SIGTERM only when asked to, and removes its handler on close', async () => {
    const before = process.listenerCount('SIGTERM');
    const plain = await service('plain');
    assert.equal(process.listenerCount('SIGTERM'), before);
    const s = await service('s', { handleSignals: true, drainDeadlineMs: 1000 });
    assert.equal(process.listenerCount('SIGTERM'), before + 1);
    process.emit('SIGTERM');
    assert.deepEqual(await s.drained, { reason: 'SIGTERM', timedOut: false, inFlight: 0 });
    assert.equal(plain.agent.state, 'ready');
    await s.agent.close();
    assert.equal(process.listenerCount('SIGTERM'), before);
  });

  it('on SIGTERM goes unready and deregisters first, serves for terminationDelayMs, then refuses and drains', async () => {
    consul = await startTestConsul();
    const clock = new ManualClock();
    const s = await service('term', {
      handleSignals: true,
      terminationDelayMs: 3000,
      drainDeadlineMs: 10_000,
      clock,
      consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
    });
    const registered = async () =>
      ((await fetch(`${consul!.url}/v1/health/service/orders`).then((r) => r.json())) as unknown[]).length;
    assert.equal(await registered(), 1);
    const held = get(s.port, '/?ms=200');
    await waitFor(() => s.agent.inFlight === 1, { what: 'a request in flight' });
    process.emit('SIGTERM');
    assert.equal(s.agent.ready, false, 'unready at once');
    await waitFor(async () => (await registered()) === 0, { what: 'deregistered from Consul' });
    assert.equal((await get(s.port, '/')).status, 200, 'a late request (kube-proxy not updated yet) is served');
    await clock.advanceAsync(2999, 1000);
    assert.equal((await get(s.port, '/')).status, 200, 'still served 1 ms before terminationDelayMs');
    assert.equal(s.agent.state, 'draining');
    await clock.advanceAsync(1);
    await waitFor(async () => (await get(s.port, '/').catch(() => ({ status: 0 }))).status !== 200, {
      what: 'new work refused after terminationDelayMs',
    });
    assert.equal((await held).status, 200, 'in-flight work finished');
    assert.deepEqual(await s.drained, { reason: 'SIGTERM', timedOut: false, inFlight: 0 });
  });

  it('drains started by the coordinator or drain() wait drainGraceMs, not terminationDelayMs', async () => {
    const clock = new ManualClock();
    const s = await service('grace', { handleSignals: true, terminationDelayMs: 20_000, drainGraceMs: 0, clock });
    assert.deepEqual(await s.agent.drain(1000, 'coordinator'), { reason: 'coordinator', timedOut: false, inFlight: 0 });
  });

  it('walks idle → starting → ready → draining → drained → closed', async () => {
    const states: AgentState[] = [];
    const server = http.createServer();
    servers.push(server);
    const agent = createAgent({ service: 'x', port: 1, address: '127.0.0.1', onDrained: () => {} });
    agents.push(agent);
    agent.onStateChange((s) => states.push(s));
    assert.equal(agent.state, 'idle');
    await agent.start();
    await agent.start(); // idempotent
    assert.equal(agent.ready, true);
    await agent.drain(100);
    await agent.close();
    await agent.close();
    assert.deepEqual(states, ['starting', 'ready', 'draining', 'drained', 'closed']);
    await assert.rejects(agent.start(), { code: 'SHOAL_ERR_CLOSED' });
    assert.throws(() => agent.drain(-1), /deadlineMs must be an integer between 0 and 3600000, got -1/);
  });

  it('times the drain deadline on the injected clock', async () => {
    const clock = new ManualClock();
    const server = http.createServer();
    servers.push(server);
    const port = await listen(server);
    let drained: DrainResult | undefined;
    const agent = createAgent({
      service: 'clocked',
      port,
      address: '127.0.0.1',
      clock,
      registry: new Registry(),
      onDrained: (r) => void (drained = r),
    });
    agents.push(agent);
    let release!: () => void;
    server.on(
      'request',
      agent.httpListener((_req, res) => {
        release = () => res.end('late');
      }),
    );
    agent.instrumentHttpServer(server);
    await agent.start();
    const held = get(port, '/');
    await waitFor(() => agent.inFlight === 1, { what: 'in flight' });
    const result = agent.drain(5000, 'test');
    await clock.advanceAsync(4999, 1000);
    assert.equal(drained, undefined, 'still waiting one ms before the deadline');
    await clock.advanceAsync(1);
    assert.deepEqual(await result, { reason: 'test', timedOut: true, inFlight: 1 });
    assert.deepEqual(drained, { reason: 'test', timedOut: true, inFlight: 1 });
    release();
    assert.equal((await held).body, 'late', 'the app may still finish what it holds');
  });

  it('serves /metrics with shoal_ names on its own port', async () => {
    const registry = new Registry();
    const agent = createAgent({
      service: 'm',
      port: 1,
      address: '127.0.0.1',
      registry,
      metrics: { port: 0, host: '127.0.0.1' },
      reportIntervalMs: 50,
      minReportIntervalMs: 50,
      onDrained: () => {},
    });
    agents.push(agent);
    agent.gauge('queue_depth', () => 12);
    agent.counter('orders_total').inc(4);
    await agent.start();
    const url = new URL(agent.metricsUrl!);
    await new Promise((resolve) => setTimeout(resolve, 120)); // one report tick sets the runtime gauges
    const res = await get(Number(url.port), '/metrics');
    assert.equal(res.status, 200);
    for (const name of [
      'shoal_agent_in_flight_requests 0',
      'shoal_agent_ready 1',
      'shoal_agent_app_metric{name="queue_depth"} 12',
      'shoal_agent_app_counter_total{name="orders_total"} 4',
      'shoal_agent_event_loop_utilization_ratio',
      'shoal_agent_event_loop_delay_p99_seconds',
      'shoal_agent_cpu_cores',
      'shoal_agent_resident_memory_bytes',
      'shoal_agent_request_duration_seconds_bucket{le="0.001"}',
    ]) {
      assert.ok(res.body.includes(name), `missing ${name}`);
    }
    assert.equal((await get(Number(url.port), '/other')).status, 404);
  });

  it('tells Consul: registered critical while starting, passing when ready, critical then gone on drain', async () => {
    consul = await startTestConsul();
    // A recording proxy in front of Consul: the order of what the agent sends, on the wire.
    const upstream = new URL(consul.url);
    const calls: string[] = [];
    const proxy = http.createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0]!;
      if (req.method === 'PUT') calls.push(path.split('/').slice(3, 5).join('/')); // /v1/agent/<a>/<b>/<id>
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(forward);
    });
    servers.push(proxy);
    const proxyPort = await listen(proxy);
    const s = await service('wire', {
      consul: { url: `http://127.0.0.1:${proxyPort}`, ...(consul.token ? { token: consul.token } : {}) },
    });
    assert.deepEqual(calls, ['service/register', 'check/fail', 'check/pass']);
    await s.agent.drain(1000);
    assert.deepEqual(calls.slice(3), ['check/fail', 'service/deregister']);
  });

  it('registers in Consul with the metrics Meta, passing once ready, and deregisters on drain', async () => {
    consul = await startTestConsul();
    const server = http.createServer((_q, r) => r.end('ok'));
    servers.push(server);
    const port = await listen(server);
    const agent = createAgent({
      service: 'orders',
      port,
      address: '127.0.0.1',
      instanceId: 'orders-reg',
      zone: 'eu-1a',
      consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
      registration: { tags: ['v1'] },
      metrics: { path: '/metrics' },
      onDrained: () => {},
    });
    agents.push(agent);
    agent.instrumentHttpServer(server);
    const health = async () => {
      const res = await fetch(`${consul!.url}/v1/health/service/orders`);
      return (await res.json()) as Array<{
        Service: { ID: string; Meta: Record<string, string>; Tags: string[] };
        Checks: Array<{ Status: string; ServiceID: string }>;
      }>;
    };
    await agent.start();
    const entries = await health();
    assert.equal(entries.length, 1);
    const entry = entries[0]!;
    assert.equal(entry.Service.ID, 'orders-reg');
    assert.equal(entry.Service.Meta.shoal_metrics_port, String(port));
    assert.equal(entry.Service.Meta.shoal_metrics_path, '/metrics');
    assert.equal(entry.Service.Meta.zone, 'eu-1a');
    assert.deepEqual(entry.Service.Tags, ['v1']);
    const serviceCheck = () => entry.Checks.find((c) => c.ServiceID === 'orders-reg');
    assert.ok(serviceCheck());
    const passing = await fetch(`${consul.url}/v1/health/service/orders?passing=true`).then((r) => r.json());
    assert.equal((passing as unknown[]).length, 1, 'passing once ready');
    await agent.drain(1000);
    assert.deepEqual(await health(), [], 'deregistered by the drain');
  });

  it('leaves nothing running or registered when close() is called while start() is under way', async () => {
    consul = await startTestConsul();
    coordinator = await startTestCoordinator({ token: 't' });
    const agent = createAgent({
      service: 'orders',
      port: 1234,
      address: '127.0.0.1',
      instanceId: 'orders-early-close',
      registry: new Registry(),
      consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
      coordinator: { url: coordinator.url, token: 't', confirmAfterMs: 100 },
      metrics: { port: 0, host: '127.0.0.1', path: '/metrics' },
      onDrained: () => {},
    });
    agents.push(agent);
    const starting = agent.start(); // awaits the metrics server's listen first
    await agent.close();
    await starting.catch(() => undefined);
    assert.equal(agent.state, 'closed');
    assert.equal(agent.metricsUrl, undefined, 'the metrics server outlived close()');
    assert.equal(agent.coordinatorStatus(), undefined, 'a coordinator reporter was started after close()');
    const entries = (await (await fetch(`${consul.url}/v1/health/service/orders`)).json()) as unknown[];
    assert.deepEqual(entries, [], 'registered in Consul after close()');
  });
});
