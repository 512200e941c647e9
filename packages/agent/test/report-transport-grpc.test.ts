import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Registry } from 'prom-client';
import { createAgent, type Agent } from '@shoal/agent';
import { LATENCY_BUCKETS_MS, latencyBucketIndex } from '@shoal/protocol';
import { startTestCoordinator, type TestCoordinator } from './support/coordinator.js';
import { closeServer, get, listen, unusedPort } from './support/http.js';
import { nextEvent, waitFor } from '../../../test/kit/index.js';

describe('reporting to the coordinator (real gRPC coordinator)', () => {
  let coordinator: TestCoordinator | undefined;
  let agent: Agent | undefined;
  let server: http.Server | undefined;
  let tcp: net.Server | undefined;
  const sockets = new Set<net.Socket>();

  afterEach(async () => {
    await agent?.close();
    await coordinator?.close();
    if (server) await closeServer(server);
    if (tcp) {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => tcp!.close(() => resolve()));
    }
    agent = coordinator = server = tcp = undefined;
  });

  /** A service whose handler answers after `?ms=`, fails on /fail, and holds /hold until released. */
  async function startService(
    coordinatorUrl: string,
    extra: Record<string, unknown> = {},
  ): Promise<{ port: number; release: () => void }> {
    let held: Array<() => void> = [];
    server = http.createServer();
    const port = await listen(server);
    const { coordinator: coordinatorExtra, ...rest } = extra;
    agent = createAgent({
      service: 'orders',
      port,
      address: '127.0.0.1',
      coordinator: { url: coordinatorUrl, token: 's3cret', confirmAfterMs: 100, ...(coordinatorExtra as object) },
      reportIntervalMs: 100,
      minReportIntervalMs: 50,
      registry: new Registry(),
      onDrained: () => {},
      ...rest,
    } as Parameters<typeof createAgent>[0]);
    server.on(
      'request',
      agent.httpListener((req, res) => {
        const url = new URL(req.url ?? '/', 'http://x');
        if (url.pathname === '/fail') {
          res.statusCode = 500;
          res.end('boom');
        } else if (url.pathname === '/hold') {
          held.push(() => res.end('released'));
        } else {
          setTimeout(() => res.end('ok'), Number(url.searchParams.get('ms') ?? 0));
        }
      }),
    );
    await agent.start();
    return {
      port,
      release: () => {
        for (const r of held) r();
        held = [];
      },
    };
  }

  it('sends a Hello, then reports whose counts, latencies, in-flight and app metrics match the load', async () => {
    coordinator = await startTestCoordinator({ token: 's3cret' });
    const { port, release } = await startService(coordinator.url);
    let depth = 7;
    agent!.gauge('queue_depth', () => depth);
    agent!.gauge('backlog', () => 30, { scope: 'service' });
    const orders = agent!.counter('orders_total');

    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const work: Array<Promise<unknown>> = [];
    for (let i = 0; i < 40; i++) work.push(get(port, '/?ms=15', keepAlive));
    for (let i = 0; i < 10; i++) work.push(get(port, '/fail', keepAlive));
    const results = await Promise.all(work);
    keepAlive.destroy();
    assert.equal(results.filter((r) => (r as { status: number }).status === 200).length, 40);
    orders.inc(3);
    orders.inc(2);
    const holds = [get(port, '/hold'), get(port, '/hold'), get(port, '/hold')];
    await waitFor(() => agent!.inFlight === 3, { what: 'three held requests' });
    await waitFor(() => coordinator!.reports.some((r) => r.inFlight === 3), { what: 'a report with 3 in flight' });
    depth = 9;
    await waitFor(() => coordinator!.reports.some((r) => r.custom.queue_depth === 9), { what: 'the new gauge value' });
    const last = coordinator.reports.at(-1)!;
    assert.deepEqual(last.serviceMetrics, { backlog: 30 }, 'a service-wide gauge travels in serviceMetrics');
    assert.equal(last.custom.backlog, undefined, 'and not in custom');
    release();
    await Promise.all(holds);
    await waitFor(() => coordinator!.reports.reduce((n, r) => n + r.requests, 0) === 53, {
      what: 'all 53 requests reported',
    });

    assert.deepEqual(coordinator.invalid, []);
    assert.equal(coordinator.hellos.length, 1);
    const hello = coordinator.hellos[0]!;
    assert.equal(hello.service, 'orders');
    assert.match(hello.instanceId, new RegExp(`^orders-.+-${port}-[0-9a-f]{8}$`), 'the default id (@shoal/core)');
    assert.equal(hello.port, port);
    assert.ok(hello.startedAtMs > 0);
    assert.equal(hello.metricsPath, '/metrics', 'the hello says where Prometheus scrapes it');
    assert.ok(
      coordinator.reports.some((r) => r.inFlightAvg !== undefined && r.inFlightAvg > 0),
      'reports carry the time-weighted in-flight mean',
    );

    const reports = coordinator.reports;
    reports.forEach((r, i) => assert.equal(r.seq, i + 1, 'seq counts up from 1 without gaps'));
    const sum = (f: (r: (typeof reports)[number]) => number) => reports.reduce((n, r) => n + f(r), 0);
    assert.equal(
      sum((r) => r.errors),
      10,
    );
    assert.equal(
      sum((r) => r.custom.orders_total ?? 0),
      5,
    );
    const buckets = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
    for (const r of reports) r.latencyBuckets.forEach((c, i) => (buckets[i]! += c));
    assert.equal(
      buckets.reduce((a, b) => a + b, 0),
      53,
    );
    // The 40 requests of >= 15 ms land in buckets above 10 ms; nothing is faster than 0.
    const at15 = latencyBucketIndex(15);
    assert.ok(buckets.slice(at15).reduce((a, b) => a + b, 0) >= 40, `buckets ${buckets.join(',')}`);
    for (const r of reports) {
      assert.ok(r.ready);
      assert.ok(r.intervalMs >= 50 && r.intervalMs < 5000, `intervalMs ${r.intervalMs}`);
      assert.ok(r.eventLoopUtilization >= 0 && r.eventLoopUtilization <= 1);
      assert.ok(r.rssBytes > 10e6 && r.heapUsedBytes > 1e6);
      assert.ok(r.cpu >= 0);
      assert.equal(r.custom.queue_depth === 7 || r.custom.queue_depth === 9, true);
    }
    assert.ok(sum((r) => r.cpu) > 0, 'some CPU was used');
  });

  it('reconnects after the coordinator restarts on the same port, and reports keep their sequence', async () => {
    coordinator = await startTestCoordinator({ token: 's3cret' });
    const port = coordinator.port;
    await startService(coordinator.url, {
      coordinator: { backoff: { baseMs: 20, capMs: 100 }, breaker: { resetTimeoutMs: 100 } },
    });
    await waitFor(() => coordinator!.reports.length >= 2, { what: 'first reports' });
    const lost = nextEvent(agent!.onCoordinatorConnection, 'disconnect');
    await coordinator.close();
    assert.equal(await lost, false);
    const firstSeqs = coordinator.reports.map((r) => r.seq);
    await waitFor(() => (agent!.coordinatorStatus()?.buffered ?? 0) >= 2, {
      what: 'reports pile up in the buffer meanwhile',
    });
    coordinator = await startTestCoordinator({ token: 's3cret', port });
    await waitFor(() => coordinator!.reports.length >= 3, { what: 'reports after the restart' });
    assert.equal(coordinator.hellos.length, 1, 'a new Hello on the new stream');
    const seqs = coordinator.reports.map((r) => r.seq);
    assert.ok(seqs[0]! > firstSeqs[firstSeqs.length - 1]!, 'continues the sequence');
    seqs.forEach((s, i) => i > 0 && assert.equal(s, seqs[i - 1]! + 1, 'buffered reports arrive in order'));
    assert.equal(agent!.coordinatorStatus()?.connected, true);
  });

  it('opens the circuit breaker while the coordinator refuses, and closes it once it accepts', async () => {
    coordinator = await startTestCoordinator({ token: 's3cret', mode: 'refuse' });
    const { port } = await startService(coordinator.url, {
      coordinator: {
        backoff: { baseMs: 10, capMs: 40 },
        breaker: { volumeThreshold: 2, resetTimeoutMs: 300, errorThresholdPercentage: 50 },
      },
    });
    await nextEvent(agent!.onBreakerChange, 'breaker open');
    assert.equal(agent!.coordinatorStatus()?.breaker, 'open');
    // That no attempt leaves while it is open is asserted on the clock in reporter.test.ts.
    assert.equal((await get(port, '/')).status, 200, 'the service keeps serving');
    coordinator.mode = 'accept';
    await waitFor(() => agent!.coordinatorStatus()?.breaker === 'closed', { what: 'breaker closed', timeoutMs: 5000 });
    await waitFor(() => coordinator!.reports.length > 0, { what: 'reports once accepted' });
    const text = await agent!['options'].registry.metrics();
    assert.match(text, /shoal_agent_coordinator_breaker_state 0/);
    assert.match(text, /shoal_agent_coordinator_connect_failures_total [1-9]/);
  });

  it('keeps serving, bounded, while the coordinator is down: oldest reports dropped and counted', async () => {
    const { port } = await startService(`127.0.0.1:${await unusedPort()}`, {
      coordinator: { maxBufferedReports: 3, backoff: { baseMs: 10, capMs: 50 } },
    });
    for (let i = 0; i < 20; i++) assert.equal((await get(port, '/')).status, 200);
    await waitFor(() => (agent!.coordinatorStatus()?.dropped ?? 0) >= 2, { what: 'dropped reports' });
    const status = agent!.coordinatorStatus()!;
    assert.equal(status.connected, false);
    assert.equal(status.buffered, 3);
    const text = await agent!['options'].registry.metrics();
    assert.match(text, /shoal_agent_reports_total\{result="dropped"\} [1-9]/);
  });

  it('delivers the drop count in the next report once the coordinator is back', async () => {
    const portNumber = await unusedPort();
    await startService(`127.0.0.1:${portNumber}`, {
      coordinator: { maxBufferedReports: 2, backoff: { baseMs: 10, capMs: 50 }, breaker: { resetTimeoutMs: 100 } },
    });
    await waitFor(() => (agent!.coordinatorStatus()?.dropped ?? 0) >= 3, { what: 'dropped reports' });
    coordinator = await startTestCoordinator({ token: 's3cret', port: portNumber });
    await waitFor(() => coordinator!.reports.length >= 2, { what: 'reports after start' });
    assert.ok(coordinator.reports[0]!.droppedReports >= 3, `droppedReports ${coordinator.reports[0]!.droppedReports}`);
    assert.equal(coordinator.reports[1]!.seq, coordinator.reports[0]!.seq + 1);
  });

  it('keeps serving when the coordinator accepts TCP but never speaks (slow): attempts time out', async () => {
    tcp = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => tcp!.listen(0, '127.0.0.1', resolve));
    const tcpPort = (tcp.address() as net.AddressInfo).port;
    const { port } = await startService(`127.0.0.1:${tcpPort}`, {
      coordinator: { connectTimeoutMs: 200, backoff: { baseMs: 10, capMs: 50 } },
    });
    const started = Date.now();
    for (let i = 0; i < 10; i++) assert.equal((await get(port, '/')).status, 200);
    assert.ok(Date.now() - started < 2000, 'requests are not held up');
    await waitFor(() => (agent!.coordinatorStatus()?.buffered ?? 0) >= 2, { what: 'reports buffered' });
    assert.equal(agent!.coordinatorStatus()?.connected, false);
    const text = await agent!['options'].registry.metrics();
    assert.match(text, /shoal_agent_coordinator_connect_failures_total [1-9]/);
  });

  it('keeps serving when the coordinator answers bytes that are not protobuf (garbage)', async () => {
    coordinator = await startTestCoordinator({ token: 's3cret', mode: 'garbage' });
    const { port } = await startService(coordinator.url, { coordinator: { backoff: { baseMs: 10, capMs: 50 } } });
    await waitFor(() => coordinator!.connects >= 3, { what: 'repeated attempts' });
    for (let i = 0; i < 5; i++) assert.equal((await get(port, '/')).status, 200);
    assert.equal(agent!.state, 'ready');
  });

  it('logs and ignores an invalid directive, keeps the stream, and applies the next valid one', async () => {
    coordinator = await startTestCoordinator({ token: 's3cret' });
    const warnings: string[] = [];
    const logger = {
      trace() {},
      debug() {},
      info() {},
      warn(_o: object, msg?: string) {
        warnings.push(String(msg));
      },
      error() {},
      fatal() {},
      child() {
        return logger;
      },
    };
    await startService(coordinator.url, { logger });
    await waitFor(() => coordinator!.openStreams() === 1 && coordinator!.reports.length > 0, { what: 'stream up' });
    coordinator.send({ reportIntervalMs: 5, desiredReplicas: 4 }); // 5 ms is below the protocol minimum
    coordinator.send({ drain: { deadlineMs: -1 } }); // not even encodable as uint32: proto-loader wraps it
    await waitFor(() => warnings.includes('ignoring an invalid directive from the coordinator'), { what: 'warning' });
    assert.equal(agent!.desiredReplicas, undefined, 'nothing from the invalid directive applied');
    assert.equal(agent!.state, 'ready');
    coordinator.send({ desiredReplicas: 6, configGeneration: 3 });
    await waitFor(() => agent!.desiredReplicas === 6, { what: 'valid directive applied' });
    assert.equal(agent!.configGeneration, 3);
    assert.equal(agent!.coordinatorStatus()?.connected, true);
    const text = await agent!['options'].registry.metrics();
    assert.match(text, /shoal_agent_directives_total\{result="invalid"\} [1-9]/);
  });

  it('honours a suggested report interval within its bounds', async () => {
    coordinator = await startTestCoordinator({ token: 's3cret' });
    await startService(coordinator.url, { minReportIntervalMs: 100, maxReportIntervalMs: 400 });
    await waitFor(() => coordinator!.openStreams() === 1, { what: 'stream up' });
    coordinator.send({ reportIntervalMs: 300 });
    await waitFor(() => agent!.reportIntervalMs === 300, { what: 'interval 300' });
    coordinator.send({ reportIntervalMs: 2000 });
    await waitFor(() => agent!.reportIntervalMs === 400, { what: 'clamped to max 400' });
    const count = coordinator.reports.length;
    await waitFor(() => coordinator!.reports.length >= count + 2, { what: 'two more reports' });
    const last = coordinator.reports[coordinator.reports.length - 1]!;
    assert.ok(last.intervalMs >= 350 && last.intervalMs < 1500, `intervalMs ${last.intervalMs}`);
  });

  it('reports over TLS when the coordinator certificate is trusted, and not otherwise', async () => {
    const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
    coordinator = await startTestCoordinator({
      token: 's3cret',
      tls: { cert: fixture('server.pem'), key: fixture('server.key') },
    });
    await startService(`grpcs://127.0.0.1:${coordinator.port}`, {
      coordinator: { tls: { ca: fixture('ca.pem'), serverName: 'localhost' } },
    });
    await waitFor(() => coordinator!.reports.length >= 2, { what: 'reports over TLS' });
    assert.equal(coordinator.hellos[0]!.service, 'orders');
    await agent!.close();
    await closeServer(server!);
    server = undefined;
    const before = coordinator.connects;
    // Default roots do not trust the test CA: the handshake fails, the agent keeps retrying quietly.
    await startService(`grpcs://127.0.0.1:${coordinator.port}`, {
      coordinator: { backoff: { baseMs: 10, capMs: 50 }, tls: { serverName: 'localhost' } },
    });
    // Three failed handshakes open the breaker (default volumeThreshold).
    assert.equal(await nextEvent(agent!.onBreakerChange, 'breaker open after failed handshakes'), 'open');
    assert.equal(coordinator.connects, before, 'no call got through the failed handshake');
    assert.equal(agent!.coordinatorStatus()?.connected, false);
  });

  it('keeps serving when the coordinator accepts but never reads: writes back off, the buffer stays bounded', async () => {
    coordinator = await startTestCoordinator({ token: 's3cret', mode: 'stall' });
    const { port } = await startService(coordinator.url, {
      reportIntervalMs: 10,
      minReportIntervalMs: 10,
      coordinator: { maxBufferedReports: 5 },
    });
    // Big reports (32 custom metrics with long names) fill the HTTP/2 flow-control window quickly.
    for (let i = 0; i < 32; i++) agent!.gauge(`metric_with_a_rather_long_name_to_fill_the_window_${i}`, () => i);
    await waitFor(() => agent!.coordinatorStatus()?.connected === true, { what: 'stream accepted' });
    await waitFor(() => (agent!.coordinatorStatus()?.dropped ?? 0) > 0, {
      what: 'reports dropped once the window is full',
      timeoutMs: 10_000,
    });
    const status = agent!.coordinatorStatus()!;
    assert.equal(status.connected, true, 'the stream is up, just not read');
    assert.ok(status.buffered <= 5, `buffered ${status.buffered}`);
    const started = Date.now();
    for (let i = 0; i < 10; i++) assert.equal((await get(port, '/')).status, 200);
    assert.ok(Date.now() - started < 2000, 'requests are not held up');
  });
});
