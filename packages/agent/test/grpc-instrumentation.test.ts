import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { GRPC_SERVER_FAULT_CODES, createAgent, type Agent, type DrainResult } from '@shoal/agent';
import { waitFor } from '../../../test/kit/index.js';
import { ECHO_SERVICE, EchoClient } from '../../grpc/test/support/echo.js';

// A real gRPC service with JSON messages (the shared test echo), so the test needs no proto of its own.
type Request = { ms?: number; code?: number };

function call(client: grpc.Client, request: Request): Promise<{ code: number }> {
  return new Promise((resolve) => {
    (client as unknown as Record<string, (r: Request, cb: (e: grpc.ServiceError | null) => void) => void>).echo!(
      request,
      (error) => resolve({ code: error ? error.code : grpc.status.OK }),
    );
  });
}

describe('gRPC server interceptor', () => {
  let agent: Agent | undefined;
  let server: grpc.Server | undefined;
  let client: grpc.Client | undefined;
  let registry: Registry;

  afterEach(async () => {
    client?.close();
    await agent?.close();
    server?.forceShutdown();
    agent = server = client = undefined;
  });

  async function start(onDrained: (r: DrainResult) => void = () => {}): Promise<void> {
    registry = new Registry();
    agent = createAgent({ service: 'echo', port: 9000, address: '127.0.0.1', registry, onDrained });
    server = new grpc.Server({ interceptors: [agent.grpcInterceptor()] });
    agent.attachGrpcServer(server);
    server.addService(ECHO_SERVICE, {
      echo(
        call: grpc.ServerUnaryCall<Request, unknown>,
        callback: (e: Partial<grpc.StatusObject> | null, v?: unknown) => void,
      ) {
        const { ms = 0, code } = call.request;
        setTimeout(() => (code ? callback({ code, details: 'as asked' }) : callback(null, { ok: true })), ms);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }

  it('counts calls, in-flight, and only server-side status codes as errors', async () => {
    await start();
    assert.equal((await call(client!, {})).code, grpc.status.OK);
    assert.equal((await call(client!, { code: grpc.status.NOT_FOUND })).code, grpc.status.NOT_FOUND);
    assert.equal((await call(client!, { code: grpc.status.INTERNAL })).code, grpc.status.INTERNAL);
    const slow = call(client!, { ms: 200 });
    await waitFor(() => agent!.inFlight === 1, { what: 'one call in flight' });
    await slow;
    await waitFor(() => agent!.inFlight === 0, { what: 'idle' });
    const text = await registry.metrics();
    assert.match(text, /shoal_agent_requests_total 4/);
    assert.match(text, /shoal_agent_request_errors_total 1/);
  });

  it('drains: running calls finish, the server shuts down (GOAWAY), then onDrained', async () => {
    let drained: DrainResult | undefined;
    await start((r) => {
      drained = r;
    });
    const running = [call(client!, { ms: 150 }), call(client!, { ms: 150 })];
    await waitFor(() => agent!.inFlight === 2, { what: 'two calls in flight' });
    const result = await agent!.drain(5000, 'scale-down');
    assert.deepEqual(result, { reason: 'scale-down', timedOut: false, inFlight: 0 });
    assert.deepEqual(drained, result);
    assert.deepEqual(
      (await Promise.all(running)).map((r) => r.code),
      [grpc.status.OK, grpc.status.OK],
    );
    // The server no longer takes calls.
    const after = await call(client!, {});
    assert.equal(after.code, grpc.status.UNAVAILABLE);
  });

  it('gives up waiting at the deadline and says so', async () => {
    await start();
    const running = call(client!, { ms: 400 });
    await waitFor(() => agent!.inFlight === 1, { what: 'in flight' });
    const result = await agent!.drain(50);
    assert.deepEqual(result, { reason: 'requested', timedOut: true, inFlight: 1 });
    await running;
  });

  it('counts as errors exactly the server-side status codes (the numbers match grpc-js)', () => {
    const s = grpc.status;
    const expected = [s.UNKNOWN, s.DEADLINE_EXCEEDED, s.RESOURCE_EXHAUSTED, s.UNIMPLEMENTED, s.INTERNAL, s.UNAVAILABLE];
    assert.deepEqual(
      [...GRPC_SERVER_FAULT_CODES].sort((a, b) => a - b),
      [...expected, s.DATA_LOSS].sort((a, b) => a - b),
    );
  });
});
