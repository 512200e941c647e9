import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createAgent, type Agent } from '@shoal/agent';
import {
  EXTERNAL_SCALER_PROTO_PATH,
  createCoordinator,
  type Coordinator,
  type CoordinatorConfigInput,
} from '@shoal/coordinator';
import { startTestConsul, type TestConsul } from '../support/consul.js';
import { createTestCa, opensslAvailable, tlsGet, type TestCa } from '../support/test-ca.js';
import { waitFor } from '../kit/index.js';
import { RecordingActuator } from '../../packages/coordinator/test/support/agent-client.js';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form JSON answers

const TOKEN = 'orders-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';
const KEDA = 'keda-token-0123456789abcdef';
/** The only name in the certificate: followers reach the leader by its pod IP and check this name. */
const SERVER_NAME = 'shoal-coordinator.shoal.svc';

function config(consulUrl: string, ca: TestCa): CoordinatorConfigInput {
  return {
    // Every interface, as in a pod: the leader advertises advertiseHost, never 0.0.0.0.
    listen: { http: '0.0.0.0:0', grpc: '0.0.0.0:0' },
    advertiseHost: '127.0.0.1',
    tls: { certFile: ca.certFile, keyFile: ca.keyFile, caFile: ca.caFile, serverName: SERVER_NAME },
    api: { readToken: READ },
    keda: { token: KEDA },
    syncPeriodMs: 3_600_000, // decisions only when the test ticks
    consul: { url: consulUrl, requestTimeoutMs: 3000 },
    ha: { enabled: true, sessionTtlMs: 10_000, lockDelayMs: 200, lockKey: 'tls/leader', stateKeyPrefix: 'tls/state' },
    services: [
      {
        name: 'orders',
        token: TOKEN,
        minReplicas: 1,
        maxReplicas: 10,
        reportIntervalMs: 250,
        customMetrics: ['queueDepth'],
        policy: {
          targets: [{ metric: 'queueDepth', value: 10 }],
          panic: false,
          forecast: false,
          scaleUpHeadroom: 0,
        },
        actuator: { type: 'command', command: 'true' },
      },
    ],
  };
}

/** `GET` over TLS trusting the test CA and checking SERVER_NAME, as an operator's client would. */
function get(
  base: string,
  path: string,
  ca: TestCa,
  token?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: Json }> {
  const url = new URL(path, base.replace('0.0.0.0', '127.0.0.1'));
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return tlsGet(url, { ca: ca.ca, servername: SERVER_NAME, headers, timeoutMs: 5000 });
}

function kedaClient(grpcUrl: string, ca: TestCa) {
  const pkg = loadSync(EXTERNAL_SCALER_PROTO_PATH, { keepCase: true, longs: Number, defaults: true });
  const Scaler = (
    grpc.loadPackageDefinition(pkg) as unknown as { externalscaler: { ExternalScaler: grpc.ServiceClientConstructor } }
  ).externalscaler.ExternalScaler;
  const client = new Scaler(grpcUrl.replace(/^grpcs:\/\/0\.0\.0\.0/, '127.0.0.1'), grpc.credentials.createSsl(ca.ca), {
    'grpc.ssl_target_name_override': SERVER_NAME,
    'grpc.default_authority': SERVER_NAME,
  });
  const rpc = client as unknown as Record<string, (req: unknown, cb: (e: Error | null, r: unknown) => void) => void>;
  const call = <T>(method: string, req: unknown) =>
    new Promise<T>((resolve, reject) => rpc[method]!.call(client, req, (e, r) => (e ? reject(e) : resolve(r as T))));
  return { client, call };
}

(opensslAvailable ? describe : describe.skip)(
  'HA with TLS, listening on 0.0.0.0 (two coordinators, consul-dev)',
  function () {
    this.timeout(60_000);
    let ca: TestCa;
    let consul: TestConsul;
    let a: Coordinator | undefined;
    let b: Coordinator | undefined;
    let agent: Agent | undefined;

    before(() => {
      ca = createTestCa([SERVER_NAME], []);
    });
    after(() => ca.remove());
    beforeEach(async () => {
      consul = await startTestConsul();
    });
    afterEach(async () => {
      await agent?.close();
      agent = undefined;
      await b?.close();
      await a?.close();
      a = b = undefined;
      await consul.close();
    });

    it('relays a TLS agent on the follower to the leader; the follower answers reads and KEDA with the leader’s view', async () => {
      a = createCoordinator(config(consul.url, ca), { id: 'a', actuatorFactory: () => new RecordingActuator(2) });
      await a.start();
      await waitFor(() => a!.isLeader, { timeoutMs: 10_000, what: 'a to lead' });
      b = createCoordinator(config(consul.url, ca), { id: 'b', actuatorFactory: () => new RecordingActuator(2) });
      await b.start();
      await waitFor(async () => (await get(b!.urls().http, '/readyz', ca)).body.reason === 'following a', {
        timeoutMs: 10_000,
        what: 'b to follow a',
      });

      // The leader advertises the dialable host, not the address it listens on.
      const headers: Record<string, string> = consul.token ? { 'x-consul-token': consul.token } : {};
      const [item] = (await (await fetch(`${consul.url}/v1/kv/tls/leader`, { headers })).json()) as Array<{
        Value: string;
      }>;
      const leader = JSON.parse(Buffer.from(item!.Value, 'base64').toString('utf8')) as Record<string, string>;
      const port = (url: string) => new URL(url.replace(/^grpcs:/, 'https:')).port;
      assert.deepEqual(leader, {
        id: 'a',
        grpcUrl: `grpcs://127.0.0.1:${port(a.urls().grpc)}`,
        httpUrl: `https://127.0.0.1:${port(a.urls().http)}`,
      });

      // A real agent reports over TLS to the follower; its reports reach the leader's window through the relay.
      agent = createAgent({
        service: 'orders',
        port: 1,
        address: '127.0.0.1',
        instanceId: 'orders-via-b',
        reportIntervalMs: 250,
        metrics: false,
        coordinator: {
          url: `grpcs://127.0.0.1:${port(b.urls().grpc)}`,
          token: TOKEN,
          tls: { ca: ca.ca.toString(), serverName: SERVER_NAME },
        },
        onDrained: () => {},
      });
      agent.gauge('queueDepth', () => 100);
      await agent.start();
      await waitFor(
        () => a!.services()[0]!.instances.find((i) => i.id === 'orders-via-b' && i.metrics.queueDepth === 100),
        { timeoutMs: 15_000, what: 'the agent on b reporting to a over TLS' },
      );
      assert.equal(b.services()[0]!.instances.length, 0, 'the follower keeps no window of its own');
      const decided = (await a.tick('orders'))!;
      assert.ok(decided.desiredReplicas > 2, `a scaled up (${decided.desiredReplicas})`);
      assert.equal(b.services()[0]!.desiredReplicas, undefined, 'b has decided nothing itself');

      // The follower's read API: the leader's answers (its own would be empty), the read token still checked locally.
      assert.equal((await get(b.urls().http, '/v1/services', ca)).status, 401);
      const services = await get(b.urls().http, '/v1/services', ca, READ);
      assert.equal(services.status, 200);
      assert.equal(services.headers['x-shoal-answered-by'], 'leader');
      assert.deepEqual(
        [services.body.coordinator.id, services.body.coordinator.leader, services.body.coordinator.answeredBy],
        ['b', false, 'a'],
      );
      assert.equal(services.body.services[0].desiredReplicas, decided.desiredReplicas);
      const one = await get(b.urls().http, '/v1/services/orders', ca, READ);
      assert.deepEqual(
        one.body.instances.map((i: { id: string }) => i.id),
        ['orders-via-b'],
      );
      const decisions = await get(b.urls().http, '/v1/services/orders/decisions', ca, READ);
      assert.equal(decisions.body.decisions[0].desiredReplicas, decided.desiredReplicas);
      const sd = await get(b.urls().http, '/v1/sd', ca, READ);
      assert.ok(
        sd.body.some((g: { labels: { instance: string } }) => g.labels.instance === 'orders-via-b'),
        JSON.stringify(sd.body),
      );
      // The rollout status is the leader's too (a command actuator has none: the leader's 404 comes through).
      const rollout = await get(b.urls().http, '/v1/services/orders/rollout', ca, READ);
      assert.equal(rollout.headers['x-shoal-answered-by'], 'leader');
      assert.equal(rollout.status, 404);
      assert.match(rollout.body.error, /no rollouts/);
      // /metrics stays the follower's own.
      assert.match((await get(b.urls().http, '/metrics', ca, READ)).body as string, /shoal_coordinator_leader 0/);

      // KEDA on the follower (TLS, the gRPC port): active, and the replica metric is the leader's decision.
      const { client, call } = kedaClient(b.urls().grpc, ca);
      try {
        const ref = { name: 'orders', namespace: 'prod', scalerMetadata: { service: 'orders', token: KEDA } };
        // The follower answers from the leader's view it fetched last, fetched again when older than 500 ms: the
        // leader's decision comes through within a fetch.
        const replicas = async () =>
          (
            await call<{ metricValues: Array<{ metricValueFloat: number }> }>('GetMetrics', {
              scaledObjectRef: ref,
              metricName: 'shoal-orders-replicas',
            })
          ).metricValues[0]?.metricValueFloat;
        await waitFor(async () => (await replicas()) === decided.desiredReplicas, {
          what: async () =>
            `GetMetrics on the follower to give the leader's ${decided.desiredReplicas}, got ${JSON.stringify(await replicas().catch((e: unknown) => String(e)))}`,
        });
        assert.deepEqual(await call('IsActive', ref), { result: true });
        const depth = await call<{ metricValues: Array<{ metricValueFloat: number }> }>('GetMetrics', {
          scaledObjectRef: { ...ref, scalerMetadata: { service: 'orders', metric: 'queueDepth', token: KEDA } },
          metricName: 'x',
        });
        assert.equal(depth.metricValues[0]?.metricValueFloat, 100);
        await assert.rejects(
          call('IsActive', { ...ref, scalerMetadata: { service: 'nope', token: KEDA } }),
          /NOT_FOUND/,
        );
        const stream = (
          client as unknown as { StreamIsActive(r: unknown): grpc.ClientReadableStream<{ result: boolean }> }
        ).StreamIsActive(ref);
        stream.on('error', () => {});
        const first = await new Promise<{ result: boolean }>((resolve) => stream.once('data', resolve));
        assert.equal(first.result, true);
        stream.cancel();
      } finally {
        client.close();
      }
    });
  },
);
