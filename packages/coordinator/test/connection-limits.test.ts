import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { createCoordinator, type Coordinator, type CoordinatorConfigInput } from '@shoal/coordinator';
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

/** A raw TCP connection to the HTTP port; `closed` resolves when the server closes it. */
function open(url: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname, () => resolve({ socket, closed }));
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

  async function start(limits: Record<string, number>): Promise<string> {
    coordinator = createCoordinator(config(limits), { actuatorFactory: () => new RecordingActuator(1) });
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
});
