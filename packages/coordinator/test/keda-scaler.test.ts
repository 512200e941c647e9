import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import {
  EXTERNAL_SCALER_PROTO_PATH,
  createCoordinator,
  type Coordinator,
  type CoordinatorConfigInput,
} from '@shoal/coordinator';
import { ServiceWindow } from '@shoal/coordinator/internal';
import { waitFor } from '../../../test/kit/index.js';
import { RecordingActuator, TestAgent, hello, report } from './support/agent-client.js';

const ORDERS = 'orders-token-0123456789abcdef';
const KEDA = 'keda-token-0123456789abcdef';

type Scaler = grpc.Client & {
  StreamIsActive(request: unknown): grpc.ClientReadableStream<{ result: boolean }>;
} & Record<string, (request: unknown, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void>;

function scalerClient(address: string): Scaler {
  const pkg = loadSync(EXTERNAL_SCALER_PROTO_PATH, { keepCase: true, longs: Number, defaults: true });
  const Ctor = (
    grpc.loadPackageDefinition(pkg) as unknown as { externalscaler: { ExternalScaler: grpc.ServiceClientConstructor } }
  ).externalscaler.ExternalScaler;
  return new Ctor(address, grpc.credentials.createInsecure()) as unknown as Scaler;
}

function unary<T>(client: Scaler, method: string, request: unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method]!.call(client, request, (e, r) => (e ? reject(e) : resolve(r as T))),
  );
}

function config(extra: Partial<CoordinatorConfigInput> = {}): CoordinatorConfigInput {
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 3_600_000,
    limits: { reportsPerSecondPerInstance: 50 },
    keda: { token: KEDA },
    services: [
      {
        name: 'orders',
        token: ORDERS,
        policy: { targets: [{ metric: 'eventLoopUtilization', value: 0.5 }] },
        actuator: { type: 'command', command: 'true' },
      },
    ],
    ...extra,
  };
}

describe('KEDA external scaler (issue 18, finding 2)', () => {
  let coordinator: Coordinator | undefined;
  let client: Scaler | undefined;
  let registry: Registry;
  const agents: TestAgent[] = [];

  async function start(extra: Partial<CoordinatorConfigInput> = {}): Promise<Coordinator> {
    registry = new Registry();
    coordinator = createCoordinator(config(extra), { registry, actuatorFactory: () => new RecordingActuator(1) });
    await coordinator.start();
    client = scalerClient(coordinator.urls().keda);
    return coordinator;
  }

  afterEach(async () => {
    sinon.restore();
    for (const a of agents.splice(0)) a.close();
    client?.close();
    client = undefined;
    await coordinator?.close();
    coordinator = undefined;
  });

  const ref = (metadata: Record<string, string> = { token: KEDA }) => ({
    name: 'orders',
    namespace: 'prod',
    scalerMetadata: { service: 'orders', ...metadata },
  });

  it('refuses every call without the token in scalerMetadata, and a wrong one, with UNAUTHENTICATED', async () => {
    await start();
    const cases: Array<Record<string, string>> = [{}, { token: 'wrong-token-0123456789abcdef' }, { token: '' }];
    for (const metadata of cases) {
      for (const method of ['IsActive', 'GetMetricSpec']) {
        await assert.rejects(unary(client!, method, ref(metadata)), (e: grpc.ServiceError) => {
          assert.equal(e.code, grpc.status.UNAUTHENTICATED);
          assert.match(e.details, /scalerMetadata\.token/);
          return true;
        });
      }
      await assert.rejects(
        unary(client!, 'GetMetrics', { scaledObjectRef: ref(metadata), metricName: 'x' }),
        (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED,
      );
      const stream = client!.StreamIsActive(ref(metadata));
      const status = await new Promise<grpc.StatusObject>((resolve) => {
        stream.on('status', resolve);
        stream.on('error', () => {});
        stream.on('data', () => assert.fail('an unauthenticated watcher got an answer'));
      });
      assert.equal(status.code, grpc.status.UNAUTHENTICATED);
    }
    // An unknown service is only named to an authenticated caller.
    await assert.rejects(
      unary(client!, 'IsActive', { name: 'x', namespace: 'y', scalerMetadata: { token: KEDA } }),
      (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
    );
    assert.deepEqual(await unary(client!, 'IsActive', ref()), { result: true });
  });

  it('without keda.token (and no client certificates) refuses KEDA entirely, naming the option', async () => {
    await start({ keda: {} });
    await assert.rejects(
      unary(client!, 'IsActive', ref({ token: 'anything-0123456789abcdef' })),
      (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.UNAUTHENTICATED);
        assert.match(e.details, /keda\.token/);
        return true;
      },
    );
  });

  it('computes a service’s answer once per decision for 60 watchers, not once per watcher', async () => {
    await start();
    const a = new TestAgent(coordinator!.urls().grpc, ORDERS).open();
    agents.push(a);
    a.send({ hello: hello('orders', 'o-1') });
    a.send({ report: report({ eventLoopUtilization: 1 }) });
    await waitFor(() => coordinator!.services()[0]!.instances.some((i) => i.lastReport), { what: 'a report' });
    const views = sinon.spy(ServiceWindow.prototype, 'views');
    const decisions = 5;
    // Baseline: what the control loop itself walks per decision, with no watcher.
    for (let i = 0; i < decisions; i++) await coordinator!.tick('orders');
    const loopOnly = views.callCount;
    views.resetHistory();

    const watchers = Array.from({ length: 60 }, () => {
      const stream = client!.StreamIsActive(ref());
      const first = new Promise<boolean>((resolve) =>
        stream.once('data', (m: { result: boolean }) => resolve(m.result)),
      );
      stream.on('error', () => {});
      return { stream, first };
    });
    assert.deepEqual(await Promise.all(watchers.map((w) => w.first)), Array(60).fill(true));
    const opening = views.callCount;
    assert.ok(opening <= 1, `60 watchers opening walked the instances ${opening} times (one cached answer)`);
    assert.match(await registry.metrics(), /shoal_coordinator_keda_watchers 60\b/);
    views.resetHistory();
    for (let i = 0; i < decisions; i++) await coordinator!.tick('orders');
    const withWatchers = views.callCount;
    // Before: every watcher walked every instance on every decision (60 × 5 = 300 extra walks).
    assert.ok(
      withWatchers - loopOnly <= decisions,
      `with 60 watchers ${withWatchers} walks for ${decisions} decisions (loop alone: ${loopOnly})`,
    );
    for (const w of watchers) w.stream.cancel();
    await waitFor(async () => /shoal_coordinator_keda_watchers 0\b/.test(await registry.metrics()), {
      what: 'watchers released',
    });
  });

  it('caps watchers at keda.maxWatchers with RESOURCE_EXHAUSTED, and frees a slot when one ends', async () => {
    await start({ keda: { token: KEDA, maxWatchers: 3 } });
    const open = Array.from({ length: 3 }, () => {
      const s = client!.StreamIsActive(ref());
      s.on('error', () => {});
      return s;
    });
    await Promise.all(open.map((s) => new Promise((resolve) => s.once('data', resolve))));
    const extra = client!.StreamIsActive(ref());
    extra.on('error', () => {});
    const status = await new Promise<grpc.StatusObject>((resolve) => extra.on('status', resolve));
    assert.equal(status.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(status.details, /too many StreamIsActive watchers \(3\)/);
    open[0]!.cancel();
    await waitFor(
      async () => {
        const s = client!.StreamIsActive(ref());
        s.on('error', () => {});
        const got = await new Promise<string>((resolve) => {
          s.once('data', () => resolve('data'));
          s.on('status', () => resolve('refused'));
        });
        if (got === 'data') open.push(s);
        return got === 'data';
      },
      { what: 'a freed watcher slot' },
    );
    for (const s of open) s.cancel();
  });
});
