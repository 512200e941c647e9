import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { ORCA_TRAILER, createLoadReporter, decodeOrcaLoadReport } from '@shoal/grpc';
import type { CallRecord, LoadReporter } from '@shoal/grpc';
import { waitFor } from '../../../test/kit/index.js';
import { EchoClient, echo, startEchoServer } from './support/echo.js';
import type { EchoClientInstance, EchoServer } from './support/echo.js';

/** Makes one echo call and returns its trailers. */
function callWithTrailers(
  client: EchoClientInstance,
): Promise<{ error: grpc.ServiceError | null; trailers: grpc.Metadata }> {
  return new Promise((resolve) => {
    let trailers = new grpc.Metadata();
    const call = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>).echo!(
      { msg: 'x' },
      (error: grpc.ServiceError | null) => setImmediate(() => resolve({ error, trailers })),
    );
    call.on('status', (s: grpc.StatusObject) => {
      trailers = s.metadata;
    });
  });
}

describe('createLoadReporter', () => {
  let server: EchoServer | undefined;
  let client: EchoClientInstance | undefined;
  let reporter: LoadReporter | undefined;

  afterEach(async () => {
    client?.close();
    reporter?.close();
    await server?.close();
    server = undefined;
    client = undefined;
  });

  async function setup(options: Parameters<typeof createLoadReporter>[0] = {}): Promise<EchoClientInstance> {
    reporter = createLoadReporter({ registry: new Registry(), ...options });
    const r = reporter;
    server = await startEchoServer('a', { serverOptions: { interceptors: [r.interceptor] } });
    client = new EchoClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    return client;
  }

  it('counts in-flight calls, requests, errors and latency', async () => {
    const registry = new Registry();
    const c = await setup({ registry });
    const records: CallRecord[] = [];
    reporter!.onCall((r) => records.push(r));
    server!.delay = 300;
    const pending = echo(c);
    await waitFor(() => reporter!.inFlight() === 1, { what: 'one call in flight' });
    await pending;
    assert.equal(reporter!.inFlight(), 0);
    server!.delay = 0;
    server!.failWith = grpc.status.INTERNAL;
    await assert.rejects(echo(c), { code: grpc.status.INTERNAL });
    const stats = reporter!.stats();
    assert.equal(stats.requests, 2);
    assert.equal(stats.errors, 1);
    assert.ok(stats.latencySumMs >= 295, `latency sum ${stats.latencySumMs}`);
    assert.deepEqual(
      records.map((r) => [r.method, r.code]),
      [
        ['/shoal.test.Echo/Echo', 0],
        ['/shoal.test.Echo/Echo', grpc.status.INTERNAL],
      ],
    );
    const text = await registry.metrics();
    assert.match(text, /shoal_grpc_server_calls_total\{code="OK"\} 1/);
    assert.match(text, /shoal_grpc_server_calls_total\{code="INTERNAL"\} 1/);
    assert.match(text, /shoal_grpc_server_in_flight_calls 0/);
  });

  it('attaches an ORCA endpoint-load-metrics-bin trailer, on errors too', async () => {
    const c = await setup({ customReport: () => ({ utilization: { queue: 0.5 } }) });
    const ok = await callWithTrailers(c);
    assert.equal(ok.error, null);
    const raw = ok.trailers.get(ORCA_TRAILER)[0];
    assert.ok(raw instanceof Buffer, 'trailer present');
    const report = decodeOrcaLoadReport(raw);
    assert.deepEqual(report.utilization, { queue: 0.5 });
    assert.ok('in_flight' in (report.namedMetrics ?? {}) || report.namedMetrics === undefined);
    server!.failWith = grpc.status.UNAVAILABLE;
    const failed = await callWithTrailers(c);
    assert.equal(failed.error?.code, grpc.status.UNAVAILABLE);
    assert.ok(failed.trailers.get(ORCA_TRAILER)[0] instanceof Buffer);
  });

  it('counts only server faults as errors: NOT_FOUND is the client’s, UNAVAILABLE the server’s', async () => {
    const c = await setup();
    server!.failWith = grpc.status.NOT_FOUND;
    await assert.rejects(echo(c), { code: grpc.status.NOT_FOUND });
    server!.failWith = grpc.status.UNAVAILABLE;
    await assert.rejects(echo(c), { code: grpc.status.UNAVAILABLE });
    assert.deepEqual(
      { requests: reporter!.stats().requests, errors: reporter!.stats().errors },
      { requests: 2, errors: 1 },
    );
  });

  it('sends no trailer with orca: false', async () => {
    const c = await setup({ orca: false });
    const { trailers } = await callWithTrailers(c);
    assert.equal(trailers.get(ORCA_TRAILER).length, 0);
  });

  it("decodes the trailer that grpc-js's own per-call recorder writes", async () => {
    const interceptor: grpc.ServerInterceptor = (_d, call) =>
      new grpc.ServerInterceptingCall(call, {
        sendStatus: (status, next) => {
          const recorder = call.getMetricsRecorder();
          recorder.recordCPUUtilizationMetric(0.25);
          recorder.recordApplicationUtilizationMetric(0.75);
          recorder.recordNamedMetric('queue', 3);
          next(status);
        },
      });
    server = await startEchoServer('c', {
      serverOptions: { 'grpc.server_call_metric_recording': 1, interceptors: [interceptor] },
    });
    client = new EchoClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const { trailers } = await callWithTrailers(client);
    const report = decodeOrcaLoadReport(trailers.get(ORCA_TRAILER)[0] as Buffer);
    assert.equal(report.cpuUtilization, 0.25);
    assert.equal(report.applicationUtilization, 0.75);
    assert.deepEqual(report.namedMetrics, { queue: 3 });
  });

  it('validates its options', () => {
    assert.throws(
      () => createLoadReporter({ sampleIntervalMs: 0 }),
      /sampleIntervalMs must be a positive integer, got 0/,
    );
    assert.throws(() => createLoadReporter({ orca: 'yes' as never }), /orca must be a boolean/);
    assert.throws(() => createLoadReporter({ nope: 1 } as never), /unknown option "nope"/);
  });
});
