import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { createAgent, type Agent, type DrainResult } from '@shoal/agent';
import { HealthClient, addHealthService, createLoadReporter, type ServingStatus } from '@shoal/grpc';
import { waitFor } from '../kit/index.js';

// The agent + grpc.health.v1 wiring (issue 16): `addHealthService(server, agent)` answers SERVING while the agent
// is ready; when a drain starts, Watch streams get NOT_SERVING and end, so the drain does not wait for them.
describe('agent + grpc.health.v1: a drain does not wait for health Watch streams', () => {
  let agent: Agent | undefined;
  let server: grpc.Server | undefined;
  let client: grpc.Client | undefined;

  afterEach(async () => {
    client?.close();
    await agent?.close();
    server?.forceShutdown();
    agent = server = client = undefined;
  });

  it('answers SERVING while ready; a held Watch gets NOT_SERVING and ends when the drain starts; the drain finishes without its deadline', async () => {
    let drained: DrainResult | undefined;
    agent = createAgent({
      service: 'greeter',
      port: 9000,
      address: '127.0.0.1',
      registry: new Registry(),
      drainDeadlineMs: 15_000,
      onDrained: (r) => {
        drained = r;
      },
    });
    const reporter = createLoadReporter({ registry: new Registry() });
    server = new grpc.Server({ interceptors: [agent.grpcInterceptor(), reporter.interceptor] });
    agent.attachGrpcServer(server);
    const health = addHealthService(server, agent);
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    assert.equal(health.getStatus(''), 'NOT_SERVING', 'not serving before the agent is ready');
    await agent.start();
    assert.equal(health.getStatus(''), 'SERVING');

    client = new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const check = await new Promise<ServingStatus>((resolve, reject) =>
      (client as unknown as { check: grpc.requestCallback<unknown> & ((...a: unknown[]) => void) }).check(
        { service: '' },
        (e: grpc.ServiceError | null, v: { status: ServingStatus }) => (e ? reject(e) : resolve(v.status)),
      ),
    );
    assert.equal(check, 'SERVING');

    // A real grpc-js client holds a Watch, as gRPC clients with health checking do.
    const seen: ServingStatus[] = [];
    let ended: grpc.StatusObject | undefined;
    const watch = (
      client as unknown as { watch: (r: unknown) => grpc.ClientReadableStream<{ status: ServingStatus }> }
    ).watch({ service: '' });
    watch.on('data', (m: { status: ServingStatus }) => seen.push(m.status));
    watch.on('status', (s: grpc.StatusObject) => (ended = s));
    watch.on('error', () => {});
    await waitFor(() => seen.length === 1, { what: 'the first Watch answer' });
    assert.deepEqual(seen, ['SERVING']);
    assert.equal(agent.inFlight, 0, 'a Watch is not in-flight work');
    assert.equal(reporter.inFlight(), 0, 'nor for the load reporter');

    const startedAt = Date.now();
    const result = await agent.drain();
    assert.deepEqual(result, { reason: 'requested', timedOut: false, inFlight: 0 });
    assert.deepEqual(drained, result);
    await waitFor(() => ended, { what: 'the Watch stream to end' });
    assert.deepEqual(seen, ['SERVING', 'NOT_SERVING']);
    assert.equal(ended!.code, grpc.status.OK);
    // Not a speed assertion: a drain held by the Watch would have run to its 15 s deadline (timedOut above).
    assert.ok(Date.now() - startedAt < 15_000);
  });

  it('a Watch opened during a drain gets NOT_SERVING and ends at once', async () => {
    agent = createAgent({ service: 'greeter', port: 9000, address: '127.0.0.1', onDrained: () => {} });
    server = new grpc.Server();
    const health = addHealthService(server, agent);
    await agent.start();
    await agent.drain(1000);
    assert.equal(health.getStatus(''), 'NOT_SERVING');
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    client = new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const seen: ServingStatus[] = [];
    const watch = (
      client as unknown as { watch: (r: unknown) => grpc.ClientReadableStream<{ status: ServingStatus }> }
    ).watch({ service: '' });
    watch.on('data', (m: { status: ServingStatus }) => seen.push(m.status));
    watch.on('error', () => {});
    const status = await new Promise<grpc.StatusObject>((resolve) => watch.on('status', resolve));
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(seen, ['NOT_SERVING']);
  });
});
