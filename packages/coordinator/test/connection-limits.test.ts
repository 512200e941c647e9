import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { createCoordinator, type Coordinator, type CoordinatorConfigInput } from '@shoal/coordinator';
import { Registry } from 'prom-client';
import { waitFor } from '../../../test/kit/index.js';
import { RecordingActuator, TestAgent, hello, report } from './support/agent-client.js';

const ORDERS = 'orders-token-0123456789abcdef';

function config(limits: Record<string, number>): CoordinatorConfigInput {
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 3_600_000,
    limits: { reportsPerSecondPerInstance: 50, ...limits },
    services: [
      {
        name: 'orders',
        token: ORDERS,
        policy: { targets: [{ metric: 'eventLoopUtilization', value: 0.5 }] },
        actuator: { type: 'command', command: 'true' },
      },
    ],
  };
}

/** A raw TCP connection (nothing sent) to `url`'s port; `closed` resolves when the server closes it. */
function open(url: string, localAddress?: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ port: Number(u.port), host: u.hostname, ...(localAddress ? { localAddress } : {}) }, () =>
      resolve({ socket, closed }),
    );
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

/** GET /healthz on a fresh connection; 0 when the connection is closed first. */
function healthz(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest(`${url}/healthz`, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

describe('connection limits on the HTTP API (issue 18, finding 6)', () => {
  let coordinator: Coordinator | undefined;
  const sockets: Socket[] = [];
  const agents: TestAgent[] = [];

  let registry: Registry;

  async function start(limits: Record<string, number>): Promise<string> {
    registry = new Registry();
    coordinator = createCoordinator(config(limits), { registry, actuatorFactory: () => new RecordingActuator(1) });
    await coordinator.start();
    return coordinator.urls().http;
  }

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const a of agents.splice(0)) a.close();
    await coordinator?.close();
    coordinator = undefined;
  });

  it('closes a client’s connection beyond httpMaxConnectionsPerClient, and serves it again once one closes', async () => {
    const url = await start({ httpMaxConnectionsPerClient: 5 });
    const held = await Promise.all(Array.from({ length: 5 }, () => open(url)));
    sockets.push(...held.map((h) => h.socket));
    const extra = await open(url);
    sockets.push(extra.socket);
    await extra.closed; // closed by the server without a byte
    // The agents' port is another listener: an honest agent still reports while the HTTP port is full.
    const agent = new TestAgent(coordinator!.urls().grpc, ORDERS).open();
    agents.push(agent);
    agent.send({ hello: hello('orders', 'orders-1') });
    agent.send({ report: report() });
    await waitFor(() => coordinator!.services()[0]!.instances.some((i) => i.lastReport), { what: 'a report' });
    held[0]!.socket.destroy();
    await waitFor(async () => (await healthz(url)) === 200, { what: 'the HTTP API answering again' });
    assert.match(
      await registry.metrics(),
      /shoal_coordinator_connections_refused_total\{listener="http",reason="max_connections_per_client"\} [1-9]/,
    );
  });

  it('closes connections beyond httpMaxConnections in total', async () => {
    const url = await start({ httpMaxConnections: 4, httpMaxConnectionsPerClient: 100 });
    const held = await Promise.all(Array.from({ length: 4 }, () => open(url)));
    sockets.push(...held.map((h) => h.socket));
    await waitFor(
      async () => {
        const extra = await open(url);
        sockets.push(extra.socket);
        return Promise.race([extra.closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 500))]);
      },
      { what: 'the fifth connection closed' },
    );
  });

  it('closes an idle keep-alive connection after httpKeepAliveTimeoutMs', async () => {
    const url = await start({ httpKeepAliveTimeoutMs: 200 });
    const conn = await open(url);
    sockets.push(conn.socket);
    conn.socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\n\r\n');
    await new Promise((resolve) => conn.socket.once('data', resolve));
    await conn.closed; // the server closed it once idle (the suite's timeout bounds the wait)
  });

  /** Opens connections to `url` until the server closes one on accept (the earlier ones are held). */
  async function openUntilRefused(url: string, localAddress?: string): Promise<void> {
    await waitFor(
      async () => {
        const extra = await open(url, localAddress);
        sockets.push(extra.socket);
        return Promise.race([extra.closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
      },
      { what: 'a connection closed on accept' },
    );
  }

  /** An agent from 127.0.0.1 says hello and reports; resolves once its report is in the service's window. */
  async function agentReports(grpcUrl: string, instance: string): Promise<void> {
    const agent = new TestAgent(grpcUrl, ORDERS).open();
    agents.push(agent);
    agent.send({ hello: hello('orders', instance) });
    agent.send({ report: report() });
    await waitFor(() => coordinator!.services()[0]!.instances.some((i) => i.id === instance && i.lastReport), {
      what: `a report from ${instance}`,
    });
  }

  it('holds at most grpcMaxConnectionsPerClient (default 256) idle TCP connections from one address on the gRPC port; agents elsewhere still report', async () => {
    await start({});
    const grpcUrl = coordinator!.urls().grpc.replace(/^grpc:/, 'http:');
    // 256 anonymous connections from 127.0.0.2 that never send the HTTP/2 preface: all accepted and held...
    const held = await Promise.all(Array.from({ length: 256 }, () => open(grpcUrl, '127.0.0.2')));
    sockets.push(...held.map((h) => h.socket));
    // ...the next one from that address is closed on accept, counted and logged,
    await openUntilRefused(grpcUrl, '127.0.0.2');
    assert.ok(
      held.every((h) => !h.socket.destroyed),
      'the admitted connections are still open',
    );
    assert.match(
      await registry.metrics(),
      /shoal_coordinator_connections_refused_total\{listener="grpc",reason="max_connections_per_client"\} [1-9]/,
    );
    // ...and an agent from another address connects and reports.
    await agentReports(coordinator!.urls().grpc, 'orders-1');
  });

  it('closes gRPC connections beyond grpcMaxConnections in total, and admits an agent again once one closes', async () => {
    await start({ grpcMaxConnections: 20, grpcMaxConnectionsPerClient: 1000 });
    const grpcUrl = coordinator!.urls().grpc.replace(/^grpc:/, 'http:');
    const held = await Promise.all(Array.from({ length: 20 }, () => open(grpcUrl, '127.0.0.3')));
    sockets.push(...held.map((h) => h.socket));
    await openUntilRefused(grpcUrl); // from 127.0.0.1 too: the total is full
    assert.match(
      await registry.metrics(),
      /shoal_coordinator_connections_refused_total\{listener="grpc",reason="max_connections"\} [1-9]/,
    );
    for (const h of held) h.socket.destroy();
    await agentReports(coordinator!.urls().grpc, 'orders-2');
  });
});
