import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Registry } from 'prom-client';
import { createAgent, type Agent, type DrainResult } from '@shoal/agent';
import { startHttpCoordinator, type HttpCoordinator } from './support/http-coordinator.js';
import { closeServer, get, listen, unusedPort } from './support/http.js';
import { nextEvent, waitFor } from '../../../test/kit/index.js';

describe('reporting to the coordinator over HTTP/JSON (real node:http coordinator)', () => {
  let coordinator: HttpCoordinator | undefined;
  let agent: Agent | undefined;
  let server: http.Server | undefined;
  let tcp: net.Server | undefined;
  const sockets = new Set<net.Socket>();
  let warnings: string[] = [];
  /** The error code of every failed attempt the agent logged (first in a row at warn, the rest at debug). */
  let failures: Array<{ code?: string }> = [];
  const logger = {
    trace() {},
    debug(o: { err?: { code?: string } }, msg?: string) {
      if (msg === 'cannot report to the coordinator; reports are buffered') failures.push({ code: o?.err?.code });
    },
    info() {},
    warn(o: { err?: { code?: string } }, msg?: string) {
      warnings.push(String(msg));
      if (msg === 'cannot report to the coordinator; reports are buffered') failures.push({ code: o?.err?.code });
    },
    error() {},
    fatal() {},
    child() {
      return logger;
    },
  };

  afterEach(async () => {
    await agent?.close();
    await coordinator?.close();
    if (server) await closeServer(server);
    if (tcp) {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => tcp!.close(() => resolve()));
    }
    agent = coordinator = server = tcp = undefined;
    warnings = [];
    failures = [];
  });

  /** A service whose handler answers after `?ms=` and fails on /fail. */
  async function startService(coordinatorUrl: string, extra: Record<string, unknown> = {}): Promise<number> {
    server = http.createServer();
    const port = await listen(server);
    const { coordinator: coordinatorExtra, ...rest } = extra;
    agent = createAgent({
      service: 'orders',
      port,
      address: '127.0.0.1',
      coordinator: { url: coordinatorUrl, token: 's3cret', ...(coordinatorExtra as object) },
      reportIntervalMs: 100,
      minReportIntervalMs: 50,
      registry: new Registry(),
      logger,
      onDrained: () => {},
      ...rest,
    } as unknown as Parameters<typeof createAgent>[0]);
    server.on(
      'request',
      agent.httpListener((req, res) => {
        const url = new URL(req.url ?? '/', 'http://x');
        if (url.pathname === '/fail') {
          res.statusCode = 500;
          res.end('boom');
        } else {
          setTimeout(() => res.end('ok'), Number(url.searchParams.get('ms') ?? 0));
        }
      }),
    );
    await agent.start();
    return port;
  }

  const metricsText = () => agent!.registry.metrics();

  it('POSTs the Hello and each report as JSON with the bearer token; counts and sequence match the load', async () => {
    coordinator = await startHttpCoordinator({ token: 's3cret' });
    const port = await startService(coordinator.url);
    agent!.gauge('queue_depth', () => 4);
    const work: Array<Promise<unknown>> = [];
    for (let i = 0; i < 20; i++) work.push(get(port, '/?ms=5'));
    for (let i = 0; i < 5; i++) work.push(get(port, '/fail'));
    await Promise.all(work);
    await waitFor(() => coordinator!.reports.reduce((n, r) => n + r.requests, 0) === 25, {
      what: 'all 25 requests reported',
    });
    assert.deepEqual(coordinator.invalid, []);
    assert.equal(
      coordinator.reports.reduce((n, r) => n + r.errors, 0),
      5,
    );
    coordinator.reports.forEach((r, i) => assert.equal(r.seq, i + 1, 'seq counts up from 1 without gaps'));
    for (const post of coordinator.posts) {
      assert.equal(post.authorization, 'Bearer s3cret');
      assert.equal(post.contentType, 'application/json');
    }
    const hello = coordinator.hellos[0]!;
    assert.equal(hello.service, 'orders');
    assert.match(hello.instanceId, new RegExp(`^orders-.+-${port}-[0-9a-f]{8}$`), 'the default id (@shoal/core)');
    assert.equal(hello.port, port);
    assert.ok(coordinator.reports.some((r) => r.custom.queue_depth === 4));
    // The coordinator records a report before it answers: the agent counts it once the answer arrived.
    const recorded = coordinator.reports.length;
    await waitFor(() => (agent!.coordinatorStatus()?.sent ?? 0) >= recorded, { what: 'the agent counted the answers' });
    assert.equal(agent!.coordinatorStatus()?.connected, true);
    assert.match(await metricsText(), /shoal_agent_reports_total\{result="sent"\} [1-9]/);
  });

  describe('keep-alive', () => {
    it('sends consecutive reports over one connection and closes it with the agent', async () => {
      coordinator = await startHttpCoordinator({ token: 's3cret' });
      await startService(coordinator.url);
      await waitFor(() => coordinator!.reports.length >= 5, { what: 'five reports' });
      assert.equal(coordinator.connections, 1);
      await agent!.close();
      await waitFor(() => coordinator!.openConnections === 0, { what: 'the idle connection closed by close()' });
      assert.deepEqual(warnings, []);
    });

    /**
     * A raw coordinator: answers with keep-alive and Content-Length; on its first connection it answers the first
     * request, then closes the connection when the second arrives without answering it (a keep-alive timeout
     * racing the request). `close` answers every request with Connection: close instead; `idle-close` closes each
     * connection 30 ms after its answer (node:http's own keep-alive timeout cannot go below about 1 s).
     */
    async function keepAliveCoordinator(mode: 'race' | 'close' | 'idle-close') {
      const perConnection: number[] = [];
      tcp = net.createServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
        const index = perConnection.push(0) - 1;
        let received = '';
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString('latin1');
          for (;;) {
            const end = received.indexOf('\r\n\r\n');
            const length = Number(/content-length: (\d+)/i.exec(received)?.[1] ?? -1);
            if (end < 0 || length < 0 || received.length < end + 4 + length) return;
            received = received.slice(end + 4 + length);
            const n = ++perConnection[index]!;
            if (mode === 'race' && index === 0 && n === 2) {
              socket.destroy();
              return;
            }
            const body = '{}';
            socket.write(
              `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n` +
                `connection: ${mode === 'close' ? 'close' : 'keep-alive'}\r\n\r\n${body}`,
            );
            if (mode === 'close') socket.end();
            if (mode === 'idle-close') setTimeout(() => socket.end(), 30);
          }
        });
      });
      await new Promise<void>((resolve) => tcp!.listen(0, '127.0.0.1', resolve));
      return { url: `http://127.0.0.1:${(tcp.address() as net.AddressInfo).port}`, perConnection };
    }

    it('sends a report once more on a new connection when the reused one closes before any answer', async () => {
      const raw = await keepAliveCoordinator('race');
      await startService(raw.url);
      await waitFor(() => (agent!.coordinatorStatus()?.sent ?? 0) >= 3, { what: 'three reports answered' });
      // Connection 1: report 1 answered, report 2 cut off; report 2 went again on connection 2, with what followed.
      assert.equal(raw.perConnection[0], 2);
      assert.ok((raw.perConnection[1] ?? 0) >= 2, JSON.stringify(raw.perConnection));
      assert.deepEqual(warnings, [], 'the cut-off report was not a failure');
      assert.equal(agent!.coordinatorStatus()?.connected, true);
    });

    it('opens a new connection when the coordinator closed the idle one, without a failed report', async () => {
      const raw = await keepAliveCoordinator('idle-close');
      await startService(raw.url); // reports every 100 ms; the coordinator closes idle connections after 30 ms
      await waitFor(() => (agent!.coordinatorStatus()?.sent ?? 0) >= 4, { what: 'four reports answered' });
      assert.ok(raw.perConnection.length >= 3, JSON.stringify(raw.perConnection));
      assert.deepEqual(warnings, []);
      assert.match(await metricsText(), /shoal_agent_coordinator_connect_failures_total 0\b/);
    });

    it('does not reuse a connection the coordinator answered with Connection: close', async () => {
      const raw = await keepAliveCoordinator('close');
      await startService(raw.url);
      await waitFor(() => (agent!.coordinatorStatus()?.sent ?? 0) >= 3, { what: 'three reports answered' });
      assert.ok(raw.perConnection.length >= 3);
      assert.ok(
        raw.perConnection.every((n) => n === 1),
        JSON.stringify(raw.perConnection),
      );
      assert.deepEqual(warnings, []);
    });
  });

  it('applies directives from the answers like streamed ones: the interval within bounds, then drain', async () => {
    coordinator = await startHttpCoordinator({ token: 's3cret' });
    let drained: DrainResult | undefined;
    const port = await startService(coordinator.url, {
      minReportIntervalMs: 100,
      maxReportIntervalMs: 400,
      onDrained: (r: DrainResult) => {
        drained = r;
      },
    });
    await waitFor(() => coordinator!.reports.length >= 1, { what: 'first report' });
    coordinator.directive({ reportIntervalMs: 300, desiredReplicas: 3, configGeneration: 2 });
    await waitFor(() => agent!.reportIntervalMs === 300, { what: 'interval 300' });
    assert.equal(agent!.desiredReplicas, 3);
    assert.equal(agent!.configGeneration, 2);
    coordinator.directive({ reportIntervalMs: 60_000 });
    await waitFor(() => agent!.reportIntervalMs === 400, { what: 'clamped to max 400' });
    assert.equal((await get(port, '/')).status, 200);
    coordinator.directive({ drain: { deadlineMs: 2000, reason: 'scale down' } });
    await waitFor(() => drained !== undefined, { what: 'drained', timeoutMs: 5000 });
    assert.deepEqual(drained, { reason: 'scale down', timedOut: false, inFlight: 0 });
    assert.equal(agent!.state, 'drained');
    const last = coordinator.reports[coordinator.reports.length - 1]!;
    assert.equal(last.ready, false, 'the last report says not ready');
    assert.equal(last.inFlight, 0);
  });

  it('logs and ignores an invalid directive; the report still counts as delivered', async () => {
    coordinator = await startHttpCoordinator({ token: 's3cret' });
    await startService(coordinator.url);
    await waitFor(() => coordinator!.reports.length >= 1, { what: 'first report' });
    coordinator.directive({ reportIntervalMs: 5, desiredReplicas: 4 }); // 5 ms is below the protocol minimum
    await waitFor(() => warnings.includes('ignoring an invalid directive from the coordinator'), { what: 'warning' });
    assert.equal(agent!.desiredReplicas, undefined, 'nothing from the invalid directive applied');
    assert.equal(agent!.reportIntervalMs, 100);
    assert.equal(agent!.state, 'ready');
    assert.equal(agent!.coordinatorStatus()?.connected, true);
    coordinator.directive({ desiredReplicas: 6 });
    await waitFor(() => agent!.desiredReplicas === 6, { what: 'valid directive applied' });
    assert.match(await metricsText(), /shoal_agent_directives_total\{result="invalid"\} 1/);
    assert.match(await metricsText(), /shoal_agent_directives_total\{result="applied"\} 1/);
  });

  for (const status of [401, 403, 500, 503]) {
    it(`keeps serving while the coordinator answers ${status}; the breaker opens, then closes and nothing is lost`, async () => {
      coordinator = await startHttpCoordinator({ token: 's3cret' });
      coordinator.mode = 'status';
      coordinator.status = status;
      const port = await startService(coordinator.url, {
        coordinator: {
          backoff: { baseMs: 10, capMs: 40 },
          breaker: { volumeThreshold: 2, resetTimeoutMs: 300, errorThresholdPercentage: 50 },
          maxAttempts: 1000,
        },
      });
      assert.equal(await nextEvent(agent!.onBreakerChange, 'breaker open'), 'open');
      // That no POST leaves while it is open is asserted on the clock in reporter.test.ts.
      for (let i = 0; i < 5; i++) assert.equal((await get(port, '/')).status, 200, 'the service keeps serving');
      assert.equal(agent!.coordinatorStatus()?.connected, false);
      coordinator.mode = 'accept';
      await waitFor(() => agent!.coordinatorStatus()?.breaker === 'closed', { what: 'breaker closed' });
      await waitFor(() => coordinator!.reports.reduce((n, r) => n + r.requests, 0) === 5, {
        what: 'the 5 requests reported',
      });
      const seqs = coordinator.reports.map((r) => r.seq);
      assert.equal(seqs[0], 1, 'the first report was kept and retried');
      seqs.forEach((s, i) => i > 0 && assert.equal(s, seqs[i - 1]! + 1, 'buffered reports arrive in order'));
      const text = await metricsText();
      assert.match(text, /shoal_agent_coordinator_connect_failures_total [1-9]/);
      assert.match(text, /shoal_agent_coordinator_breaker_state 0/);
    });
  }

  it('waits at least Retry-After on 429 before trying again', async () => {
    coordinator = await startHttpCoordinator({ token: 's3cret' });
    coordinator.mode = 'status';
    coordinator.status = 429;
    coordinator.retryAfter = '1';
    await startService(coordinator.url, {
      coordinator: { backoff: { baseMs: 10, capMs: 5000 }, breaker: { volumeThreshold: 100 } },
    });
    await waitFor(() => coordinator!.posts.length >= 2, { what: 'a retry', timeoutMs: 5000 });
    const [first, second] = coordinator.posts;
    assert.ok(second!.at - first!.at >= 950, `retried after ${second!.at - first!.at} ms`);
    coordinator.mode = 'accept';
    await waitFor(() => coordinator!.reports.length >= 1, { what: 'accepted after the wait', timeoutMs: 5000 });
  });

  it('drops a report the coordinator refuses as invalid (400) instead of retrying it', async () => {
    coordinator = await startHttpCoordinator({ token: 's3cret' });
    coordinator.mode = 'status';
    coordinator.status = 400;
    await startService(coordinator.url, {
      reportIntervalMs: 300,
      coordinator: { backoff: { baseMs: 10, capMs: 20 }, breaker: { volumeThreshold: 100 } },
    });
    await waitFor(() => coordinator!.posts.length >= 2, { what: 'two POSTs' });
    assert.deepEqual(
      coordinator.posts.slice(0, 2).map((p) => p.seq),
      [1, 2],
      'report 1 was not retried: the next POST carried report 2',
    );
    assert.ok((agent!.coordinatorStatus()?.dropped ?? 0) >= 1);
    assert.ok(warnings.includes('the coordinator refused a report as invalid; dropped'));
  });

  it('gives up on a report after maxAttempts and counts it dropped', async () => {
    coordinator = await startHttpCoordinator({ token: 's3cret' });
    coordinator.mode = 'status';
    coordinator.status = 502;
    await startService(coordinator.url, {
      reportIntervalMs: 500,
      coordinator: { maxAttempts: 3, backoff: { baseMs: 10, capMs: 20 }, breaker: { volumeThreshold: 100 } },
    });
    await waitFor(() => agent!.coordinatorStatus()?.dropped === 1, { what: 'the report dropped' });
    assert.equal(coordinator.posts.length, 3, 'three attempts, no more');
    assert.equal(agent!.coordinatorStatus()?.buffered, 0);
  });

  it('keeps serving, bounded, while the coordinator is down; the drop count arrives once it is back', async () => {
    const coordinatorPort = await unusedPort();
    const port = await startService(`http://127.0.0.1:${coordinatorPort}`, {
      coordinator: { maxBufferedReports: 3, backoff: { baseMs: 10, capMs: 50 }, breaker: { resetTimeoutMs: 100 } },
    });
    for (let i = 0; i < 10; i++) assert.equal((await get(port, '/')).status, 200);
    await waitFor(() => (agent!.coordinatorStatus()?.dropped ?? 0) >= 3, { what: 'dropped reports' });
    const status = agent!.coordinatorStatus()!;
    assert.equal(status.connected, false);
    assert.ok(status.buffered <= 3, `buffered ${status.buffered}`);
    assert.match(await metricsText(), /shoal_agent_reports_total\{result="dropped"\} [1-9]/);
    coordinator = await startHttpCoordinator({ token: 's3cret', port: coordinatorPort });
    await waitFor(() => coordinator!.reports.length >= 2, { what: 'reports once it is back' });
    assert.ok(coordinator.reports[0]!.droppedReports >= 3, `droppedReports ${coordinator.reports[0]!.droppedReports}`);
    const total = coordinator.reports.reduce((n, r) => n + r.droppedReports, 0);
    assert.ok(total <= agent!.coordinatorStatus()!.dropped, 'each drop is reported once');
  });

  it('keeps serving when the coordinator never answers (slow): each POST times out', async () => {
    coordinator = await startHttpCoordinator({ token: 's3cret' });
    coordinator.mode = 'hang';
    const port = await startService(coordinator.url, {
      coordinator: { requestTimeoutMs: 150, backoff: { baseMs: 10, capMs: 30 }, breaker: { volumeThreshold: 100 } },
    });
    const started = Date.now();
    for (let i = 0; i < 10; i++) assert.equal((await get(port, '/')).status, 200);
    assert.ok(Date.now() - started < 2000, 'requests are not held up');
    await waitFor(() => coordinator!.posts.length >= 2, { what: 'a retry after the timeout' });
    assert.equal(agent!.coordinatorStatus()?.connected, false);
    assert.ok(warnings.includes('cannot report to the coordinator; reports are buffered'));
  });

  it('keeps serving when a TCP peer accepts and never speaks HTTP', async () => {
    tcp = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => tcp!.listen(0, '127.0.0.1', resolve));
    const tcpPort = (tcp.address() as net.AddressInfo).port;
    // Asserts what the peer causes, a POST that timed out, not how many reports piled up meanwhile: that count
    // raced 100 ms report ticks against 100 ms timeouts and the breaker's refusals, and fell short under load.
    const port = await startService(`http://127.0.0.1:${tcpPort}`, {
      reportIntervalMs: 100,
      coordinator: { requestTimeoutMs: 100, maxAttempts: 1000, backoff: { baseMs: 10, capMs: 30 } },
    });
    for (let i = 0; i < 5; i++) assert.equal((await get(port, '/')).status, 200);
    await waitFor(() => failures.some((f) => f.code === 'SHOAL_ERR_TIMEOUT'), {
      what: 'a POST that timed out',
      timeoutMs: 10_000,
    });
    assert.ok(sockets.size >= 1, 'the agent connected to the peer');
    assert.equal(agent!.coordinatorStatus()?.connected, false);
    assert.equal(agent!.coordinatorStatus()?.sent, 0);
    assert.match(await metricsText(), /shoal_agent_coordinator_connect_failures_total [1-9]/);
  });

  it('keeps serving when the coordinator answers 200 with a body that is not JSON (garbage)', async () => {
    coordinator = await startHttpCoordinator({ token: 's3cret' });
    coordinator.mode = 'garbage';
    const port = await startService(coordinator.url, { coordinator: { backoff: { baseMs: 10, capMs: 30 } } });
    await waitFor(() => coordinator!.posts.length >= 3, { what: 'repeated attempts' });
    for (let i = 0; i < 5; i++) assert.equal((await get(port, '/')).status, 200);
    assert.equal(agent!.state, 'ready');
    assert.equal(agent!.coordinatorStatus()?.connected, false);
    assert.equal(agent!.desiredReplicas, undefined);
  });

  it('reports over HTTPS when the coordinator certificate is trusted, and not otherwise', async () => {
    const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
    coordinator = await startHttpCoordinator({
      token: 's3cret',
      tls: { cert: fixture('server.pem'), key: fixture('server.key') },
    });
    await startService(coordinator.url, { coordinator: { tls: { ca: fixture('ca.pem'), serverName: 'localhost' } } });
    await waitFor(() => coordinator!.reports.length >= 3, { what: 'reports over TLS' });
    assert.equal(coordinator.connections, 1, 'one TLS handshake for all the reports (keep-alive)');
    await agent!.close();
    await closeServer(server!);
    server = undefined;
    const before = coordinator.posts.length;
    // Default roots do not trust the test CA: the handshake fails, the agent keeps retrying quietly.
    await startService(coordinator.url, { coordinator: { backoff: { baseMs: 10, capMs: 50 } } });
    // Three failed handshakes open the breaker (default volumeThreshold).
    assert.equal(await nextEvent(agent!.onBreakerChange, 'breaker open after failed handshakes'), 'open');
    assert.ok(warnings.includes('cannot report to the coordinator; reports are buffered'));
    assert.equal(coordinator.posts.length, before, 'no POST got through the failed handshake');
    assert.equal(agent!.coordinatorStatus()?.connected, false);
  });

  it('posts under the URL prefix and sends a last not-ready report on close()', async () => {
    const seen: string[] = [];
    const bodies: Array<{ report: { ready: boolean } }> = [];
    const proxy = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push(JSON.parse(body) as { report: { ready: boolean } });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    const proxyPort = await listen(proxy);
    try {
      await startService(`http://127.0.0.1:${proxyPort}/shoal/`, { reportIntervalMs: 1000 });
      await agent!.close();
      assert.deepEqual(seen, ['POST /shoal/v1/report']);
      assert.equal(bodies[0]!.report.ready, false);
    } finally {
      await closeServer(proxy);
    }
  });

  /** A coordinator written on a raw socket, to send answers node:http would not: chunked, close-delimited, junk. */
  async function rawCoordinator(answer: (n: number) => string): Promise<{ url: string; posts: () => number }> {
    let posts = 0;
    tcp = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      let received = '';
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        const end = received.indexOf('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(received)?.[1] ?? -1);
        if (end < 0 || received.length < end + 4 + length) return;
        socket.end(answer(posts++));
      });
    });
    await new Promise<void>((resolve) => tcp!.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(tcp.address() as net.AddressInfo).port}`, posts: () => posts };
  }

  it('reads chunked and close-delimited answers, and counts bytes that are not HTTP as a failure', async () => {
    const directive = JSON.stringify({ directive: { desiredReplicas: 7 } });
    const half = Math.floor(directive.length / 2);
    const raw = await rawCoordinator((n) =>
      n === 0
        ? 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n' +
          `${half.toString(16)}\r\n${directive.slice(0, half)}\r\n` +
          `${(directive.length - half).toString(16)}\r\n${directive.slice(half)}\r\n0\r\n\r\n`
        : n === 1
          ? 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"directive":{"configGeneration":9}}'
          : 'SSH-2.0-OpenSSH_9.6\r\n',
    );
    const port = await startService(raw.url, { coordinator: { backoff: { baseMs: 10, capMs: 30 } } });
    await waitFor(() => agent!.desiredReplicas === 7, { what: 'the chunked directive' });
    await waitFor(() => agent!.configGeneration === 9, { what: 'the close-delimited directive' });
    await waitFor(() => raw.posts() >= 4, { what: 'attempts after the junk answers' });
    await waitFor(() => agent!.coordinatorStatus()?.connected === false, { what: 'junk counted as a failure' });
    assert.equal((await get(port, '/')).status, 200);
    assert.equal(agent!.coordinatorStatus()?.sent, 2);
  });
});
