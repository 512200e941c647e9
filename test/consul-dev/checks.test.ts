import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { eventually, setup } from './support.js';
import type { Fixture, HealthEntry } from './support.js';

describe('consul-dev conformance: checks the server runs (short real intervals)', () => {
  let f: Fixture;
  let target: Server;
  let healthy = true;
  let port: number;
  beforeEach(async () => {
    f = await setup();
    healthy = true;
    target = createServer((_req, res) => {
      res.writeHead(healthy ? 200 : 500);
      res.end(healthy ? 'ok' : 'broken');
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    port = (target.address() as AddressInfo).port;
  });
  afterEach(async () => {
    await f.cleanup();
    target.closeAllConnections();
    await new Promise((r) => target.close(r));
  });

  const status = async (name: string) => {
    const entries = (await f.consul.health.service(name)) as HealthEntry[];
    return entries[0]?.Checks.find((c) => c.ServiceID !== '')?.Status;
  };

  it('an HTTP check turns passing, then critical when the endpoint fails', async function () {
    this.timeout(15_000);
    const name = f.name();
    f.track(name);
    await f.consul.agent.service.register({
      name,
      port,
      check: { http: `http://127.0.0.1:${port}/health`, interval: '1s', timeout: '1s' },
    } as never);
    await eventually(async () => (await status(name)) === 'passing', 6000);
    healthy = false;
    await eventually(async () => (await status(name)) === 'critical', 6000);
    const passing = (await f.consul.health.service({ service: name, passing: true })) as HealthEntry[];
    assert.deepEqual(passing, []);
  });

  it('a TCP check passes while the port is open', async function () {
    this.timeout(15_000);
    const name = f.name();
    f.track(name);
    await f.consul.agent.service.register({
      name,
      port,
      check: { tcp: `127.0.0.1:${port}`, interval: '1s', timeout: '1s' },
    } as never);
    await eventually(async () => (await status(name)) === 'passing', 6000);
  });

  it('a gRPC check calls grpc.health.v1.Health/Check and passes on SERVING', async function () {
    this.timeout(15_000);
    const server = new grpc.Server();
    let serving = 1;
    server.addService(
      {
        Check: {
          path: '/grpc.health.v1.Health/Check',
          requestStream: false,
          responseStream: false,
          requestSerialize: (v: Buffer) => v,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (status: number) => Buffer.from([0x08, status]),
          responseDeserialize: (b: Buffer) => b[1] ?? 0,
        },
      },
      { Check: (_call: unknown, cb: grpc.sendUnaryData<number>) => cb(null, serving) },
    );
    const grpcPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    try {
      const name = f.name();
      f.track(name);
      await f.consul.agent.service.register({
        name,
        port: grpcPort,
        check: { grpc: `127.0.0.1:${grpcPort}`, interval: '1s', timeout: '1s' },
      } as never);
      await eventually(async () => (await status(name)) === 'passing', 6000);
      serving = 2; // NOT_SERVING
      await eventually(async () => (await status(name)) === 'critical', 6000);
    } finally {
      server.forceShutdown();
    }
  });
});
