import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { createAgent, type Agent } from '@shoal/agent';
import {
  ORCA_TRAILER,
  addHealthService,
  createLoadReporter,
  decodeOrcaLoadReport,
  type LoadReporter,
} from '@shoal/grpc';
import { waitFor } from '../kit/index.js';
import { ECHO_SERVICE, EchoClient } from '../../packages/grpc/test/support/echo.js';

// One gRPC server instrumentation: the agent's interceptor and @shoal/grpc's load reporter on one server count each
// call once, with one meaning of "error" (a server fault), in either order.
type Request = { ms?: number; code?: number };

function call(client: grpc.Client, request: Request): Promise<{ code: number; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const c = (
      client as unknown as Record<
        string,
        (r: Request, cb: (e: grpc.ServiceError | null) => void) => grpc.ClientUnaryCall
      >
    ).echo!(request, (error) =>
      setImmediate(() => resolve({ code: error ? error.code : grpc.status.OK, ...(trailers ? { trailers } : {}) })),
    );
    c.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

describe('the agent interceptor and the load reporter on one gRPC server', () => {
  let agent: Agent | undefined;
  let reporter: LoadReporter | undefined;
  let server: grpc.Server | undefined;
  let client: grpc.Client | undefined;

  afterEach(async () => {
    client?.close();
    reporter?.close();
    await agent?.close();
    server?.forceShutdown();
    agent = reporter = server = client = undefined;
  });

  async function start(order: 'agent-first' | 'reporter-first', registry: Registry): Promise<void> {
    agent = createAgent({ service: 'echo', port: 9000, address: '127.0.0.1', registry, onDrained: () => {} });
    reporter = createLoadReporter({ registry, sampleIntervalMs: 1 });
    const interceptors =
      order === 'agent-first'
        ? [agent.grpcInterceptor(), reporter.interceptor]
        : [reporter.interceptor, agent.grpcInterceptor()];
    server = new grpc.Server({ interceptors });
    addHealthService(server);
    server.addService(ECHO_SERVICE, {
      echo(
        c: grpc.ServerUnaryCall<Request, unknown>,
        callback: (e: Partial<grpc.StatusObject> | null, v?: unknown) => void,
      ) {
        const { ms = 0, code } = c.request;
        setTimeout(() => (code ? callback({ code, details: 'as asked' }) : callback(null, { ok: true })), ms);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }

  for (const order of ['agent-first', 'reporter-first'] as const) {
    it(`counts each call once, errors = server faults (${order})`, async () => {
      const registry = new Registry();
      await start(order, registry);
      const codes = [grpc.status.OK, grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT, grpc.status.INTERNAL];
      for (const code of codes) {
        assert.equal((await call(client!, code === grpc.status.OK ? {} : { code })).code, code);
      }
      const slow = call(client!, { ms: 300 });
      await waitFor(() => agent!.inFlight === 1, { what: 'one call in flight' });
      assert.equal(reporter!.inFlight(), 1, 'the reporter reads the same in-flight count');
      const last = await slow;
      const stats = reporter!.stats();
      assert.equal(stats.requests, 5);
      assert.equal(stats.errors, 1, 'NOT_FOUND and INVALID_ARGUMENT are the client’s, INTERNAL the server’s');
      const text = await registry.metrics();
      assert.match(text, /shoal_agent_requests_total 5\b/);
      assert.match(text, /shoal_agent_request_errors_total 1\b/);
      assert.doesNotMatch(text, /shoal_grpc_server_calls_total\{/, 'the reporter did not count the calls again');
      const orca = decodeOrcaLoadReport(last.trailers!.get(ORCA_TRAILER)[0] as Buffer);
      assert.ok(orca.namedMetrics !== undefined && 'in_flight' in orca.namedMetrics, 'the ORCA trailer is still sent');
    });
  }

  it('the load reporter alone counts the same way (server faults only)', async () => {
    const registry = new Registry();
    reporter = createLoadReporter({ registry });
    server = new grpc.Server({ interceptors: [reporter.interceptor] });
    server.addService(ECHO_SERVICE, {
      echo(
        c: grpc.ServerUnaryCall<Request, unknown>,
        callback: (e: Partial<grpc.StatusObject> | null, v?: unknown) => void,
      ) {
        const { code } = c.request;
        callback(code ? { code, details: 'as asked' } : null, { ok: true });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    await call(client, { code: grpc.status.NOT_FOUND });
    await call(client, { code: grpc.status.UNAVAILABLE });
    assert.deepEqual(
      { requests: reporter.stats().requests, errors: reporter.stats().errors },
      { requests: 2, errors: 1 },
    );
    assert.match(await registry.metrics(), /shoal_grpc_server_calls_total\{code="NOT_FOUND"\} 1/);
  });
});
