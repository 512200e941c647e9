import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from '@shoal/core';
import { HealthClient, addHealthService } from '@shoal/grpc';
import type { HealthService, ServingStatus } from '@shoal/grpc';

type HealthClientInstance = InstanceType<typeof HealthClient> & Record<string, (...a: unknown[]) => unknown>;

describe('grpc.health.v1.Health', () => {
  let server: grpc.Server | undefined;
  let client: HealthClientInstance | undefined;
  let health: HealthService | undefined;

  afterEach(async () => {
    health?.close();
    client?.close();
    await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
    server = undefined;
  });

  async function start(source?: Parameters<typeof addHealthService>[1]): Promise<HealthClientInstance> {
    server = new grpc.Server();
    health = addHealthService(server, source, { services: ['greeter'] });
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    client = new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as HealthClientInstance;
    return client;
  }

  function check(c: HealthClientInstance, service: string): Promise<ServingStatus> {
    return new Promise((resolve, reject) =>
      c.check!({ service }, (err: grpc.ServiceError | null, res: { status: ServingStatus }) =>
        err ? reject(err) : resolve(res.status),
      ),
    );
  }

  it('answers Check from a status source and follows its changes', async () => {
    const changes = new EventEmitter<ServingStatus>();
    let status: ServingStatus = 'NOT_SERVING';
    const c = await start({ status: () => status, onChange: changes.event });
    assert.equal(await check(c, ''), 'NOT_SERVING');
    status = 'SERVING';
    changes.emit('SERVING');
    assert.equal(await check(c, ''), 'SERVING');
    assert.equal(await check(c, 'greeter'), 'SERVING');
    await assert.rejects(check(c, 'other'), { code: grpc.status.NOT_FOUND });
  });

  it('follows a ServiceRegistration: SERVING while registered', async () => {
    const states = new EventEmitter<string>();
    const c = await start({ instance: { service: 'orders' }, state: 'registering', onStateChange: states.event });
    assert.equal(await check(c, 'orders'), 'NOT_SERVING');
    states.emit('registered');
    assert.equal(await check(c, 'orders'), 'SERVING');
    states.emit('closed');
    assert.equal(await check(c, ''), 'NOT_SERVING');
  });

  it('streams status changes to Watch', async () => {
    const c = await start();
    const call = c.watch!({ service: '' }) as grpc.ClientReadableStream<{ status: ServingStatus }>;
    const seen: ServingStatus[] = [];
    const done = new Promise<void>((resolve) => {
      call.on('data', (m: { status: ServingStatus }) => {
        seen.push(m.status);
        if (seen.length === 1) health!.setStatus('', 'NOT_SERVING');
        if (seen.length === 2) resolve();
      });
    });
    await done;
    call.cancel();
    call.on('error', () => {});
    assert.deepEqual(seen, ['SERVING', 'NOT_SERVING']);
  });
});
