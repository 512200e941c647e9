import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadCoordinatorService } from '@shoal/protocol';
import { loadSync } from '@grpc/proto-loader';
import { Registry } from 'prom-client';
import { hasErrorCode } from '@shoal/core';
import {
  EXTERNAL_SCALER_PROTO_PATH,
  createCoordinator,
  type Coordinator,
  type CoordinatorConfigInput,
} from '@shoal/coordinator';
import { RecordingActuator, TestAgent, hello, report } from './support/agent-client.js';
import { recordingLogger } from './support/recording-logger.js';
import { waitFor } from '../../../test/kit/index.js';

const ORDERS = 'orders-token-0123456789abcdef';
const USERS = 'users-token-0123456789abcdef';
const KEDA = 'keda-token-0123456789abcdef';

function config(extra: Partial<CoordinatorConfigInput> = {}): CoordinatorConfigInput {
  const policy = {
    targets: [{ metric: 'eventLoopUtilization', value: 0.5 }],
    panic: false,
    scaleUpHeadroom: 0,
    forecast: false,
    behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
  };
  const actuator = { type: 'command' as const, command: 'true' };
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 3_600_000,
    limits: { reportsPerSecondPerInstance: 50 },
    services: [
      { name: 'orders', token: ORDERS, minReplicas: 1, maxReplicas: 10, drainTimeoutMs: 2000, policy, actuator },
      { name: 'users', token: USERS, policy, actuator },
    ],
    ...extra,
  };
}

describe('coordinator', () => {
  let coordinator: Coordinator | undefined;
  let agents: TestAgent[] = [];
  let actuators: Map<string, RecordingActuator>;
  let registry: Registry;

  async function start(extra: Partial<CoordinatorConfigInput> = {}, startReplicas = 2): Promise<Coordinator> {
    actuators = new Map();
    registry = new Registry();
    coordinator = createCoordinator(config(extra), {
      registry,
      logger: recordingLogger(),
      actuatorFactory: (s) => {
        const a = new RecordingActuator(startReplicas);
        actuators.set(s.name, a);
        return a;
      },
    });
    await coordinator.start();
    return coordinator;
  }

  function agent(token?: string): TestAgent {
    const a = new TestAgent(coordinator!.urls().grpc, token);
    agents.push(a);
    return a.open();
  }

  const http = (path: string, init?: RequestInit) => fetch(`${coordinator!.urls().http}${path}`, init);

  afterEach(async () => {
    for (const a of agents) a.close();
    agents = [];
    await coordinator?.close();
    coordinator = undefined;
  });

  it('releases the gRPC port when start() fails because the HTTP port is taken', async () => {
    const listen = (port: number) =>
      new Promise<NetServer>((resolve, reject) => {
        const s = createNetServer();
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve(s));
      });
    const closeNet = (s: NetServer) => new Promise<void>((resolve) => s.close(() => resolve()));
    const blocker = await listen(0);
    const probe = await listen(0);
    const grpcPort = (probe.address() as AddressInfo).port;
    await closeNet(probe);
    const taken = (blocker.address() as AddressInfo).port;
    const failed = createCoordinator(
      config({ listen: { http: `127.0.0.1:${taken}`, grpc: `127.0.0.1:${grpcPort}` } }),
      { registry: new Registry(), logger: recordingLogger(), actuatorFactory: () => new RecordingActuator(1) },
    );
    try {
      await assert.rejects(failed.start(), /EADDRINUSE/);
      // Nothing may stay bound behind a failed start: the gRPC port is free again.
      const again = await listen(grpcPort);
      await closeNet(again);
    } finally {
      await failed.close();
      await closeNet(blocker);
    }
  });

  it('closes its keep-alive connections to Consul on close()', async () => {
    let requests = 0;
    const fakeConsul = createHttpServer((_req, res) => {
      requests++;
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    });
    fakeConsul.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => fakeConsul.listen(0, '127.0.0.1', resolve));
    const { port } = fakeConsul.address() as AddressInfo;
    const connections = () => new Promise<number>((resolve) => fakeConsul.getConnections((_e, n) => resolve(n)));
    try {
      await start({ consul: { url: `http://127.0.0.1:${port}`, requestTimeoutMs: 2000 } });
      await waitFor(() => requests > 0, { timeoutMs: 5000, what: 'the policy state to be read from Consul' });
      await coordinator!.close();
      coordinator = undefined;
      await waitFor(async () => (await connections()) === 0, {
        timeoutMs: 2000,
        what: 'the Consul connections to close',
      });
    } finally {
      fakeConsul.closeAllConnections();
      await new Promise((resolve) => fakeConsul.close(resolve));
    }
  });

  it('serves health, readiness, metrics and an empty status before any agent', async () => {
    await start();
    assert.equal((await http('/healthz')).status, 200);
    const ready = await http('/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', reason: 'leader' });
    const status = (await (await http('/v1/services')).json()) as {
      services: Array<{ name: string; instances: unknown[] }>;
    };
    assert.deepEqual(
      status.services.map((s) => [s.name, s.instances.length]),
      [
        ['orders', 0],
        ['users', 0],
      ],
    );
    const metrics = await (await http('/metrics')).text();
    assert.match(metrics, /shoal_coordinator_leader 1/);
    assert.equal((await http('/nope')).status, 404);
    assert.equal((await http('/v1/services', { method: 'DELETE' })).status, 405);
  });

  it('takes hello and reports over the stream into the window, the status API and service discovery', async () => {
    await start();
    const a = agent(ORDERS);
    a.send({ hello: hello('orders', 'orders-1', { zone: 'eu-1', version: '1.2.3', port: 4101 }) });
    a.send({ report: report({ eventLoopUtilization: 0.8, custom: { queue_depth: 7 } }) });
    const status = await waitFor(async () => {
      const s = (await (await http('/v1/services/orders')).json()) as { instances: Array<Record<string, unknown>> };
      return s.instances[0]?.lastReport ? s : undefined;
    });
    const inst = status.instances[0]! as {
      id: string;
      connected: boolean;
      lastReport: { eventLoopUtilization: number };
      metrics: Record<string, number>;
    };
    assert.equal(inst.id, 'orders-1');
    assert.equal(inst.connected, true);
    assert.equal(inst.lastReport.eventLoopUtilization, 0.8);
    assert.equal(inst.metrics.queue_depth, 7);
    const sd = (await (await http('/v1/sd')).json()) as Array<{ targets: string[]; labels: Record<string, string> }>;
    assert.deepEqual(
      sd.find((g) => g.labels.instance === 'orders-1'),
      {
        targets: ['127.0.0.1:4101'],
        labels: { service: 'orders', instance: 'orders-1', zone: 'eu-1', version: '1.2.3', ready: 'true' },
      },
    );
    assert.ok(sd.some((g) => g.labels.service === 'shoal-coordinator'));
    assert.match(
      await registry.metrics(),
      /shoal_coordinator_reports_received_total\{service="orders",transport="stream"\} 1/,
    );
    // An agent serving /metrics on a port of its own is listed there, with its path.
    const b = agent(ORDERS);
    b.send({ hello: hello('orders', 'orders-2', { port: 4102, metricsPort: 9464, metricsPath: '/prom' }) });
    b.send({ report: report({}) });
    const sd2 = await waitFor(async () => {
      const groups = (await (await http('/v1/sd')).json()) as Array<{
        targets: string[];
        labels: Record<string, string>;
      }>;
      return groups.find((g) => g.labels.instance === 'orders-2');
    });
    assert.deepEqual(sd2.targets, ['127.0.0.1:9464']);
    assert.equal(sd2.labels.__metrics_path__, '/prom');
  });

  it('refuses streams without a token, with a wrong token, with another service token or for an unknown service', async () => {
    await start();
    const cases: Array<[string | undefined, string, grpc.status]> = [
      [undefined, 'orders', grpc.status.UNAUTHENTICATED],
      ['wrong-token-0123456789abcdef', 'orders', grpc.status.UNAUTHENTICATED],
      [USERS, 'orders', grpc.status.PERMISSION_DENIED],
      [ORDERS, 'payments', grpc.status.PERMISSION_DENIED],
    ];
    for (const [token, service, code] of cases) {
      const a = agent(token);
      a.send({ hello: hello(service, 'x-1') });
      const s = await a.closed();
      assert.equal(s.code, code, `${token} for ${service}: ${s.details}`);
    }
    const metrics = await registry.metrics();
    assert.match(metrics, /reports_refused_total\{reason="unauthenticated",transport="stream"\} 2/);
    assert.match(metrics, /reports_refused_total\{reason="permission_denied",transport="stream"\} 2/);
    const status = (await (await http('/v1/services')).json()) as { services: Array<{ instances: unknown[] }> };
    assert.ok(
      status.services.every((s) => s.instances.length === 0),
      'nothing refused reached a window',
    );
  });

  it('refuses malformed and hostile messages with the reason, and keeps serving', async () => {
    await start();
    const bad: Array<[unknown[], RegExp]> = [
      [[{ report: report() }], /first message on a stream must be hello/],
      [[{ hello: hello('orders', 'o-1', { port: 70000 }) }], /hello.port/],
      [[{ hello: hello('orders', 'has space') }], /instanceId/],
      [[{ hello: hello('orders', 'o-2') }, { hello: hello('orders', 'o-2') }], /hello sent twice/],
      [[{ hello: hello('orders', 'o-3') }, { report: report({ eventLoopUtilization: -1 }) }], /eventLoopUtilization/],
      [[{ hello: hello('orders', 'o-4') }, { report: report({ errors: 10, requests: 1 }) }], /report.errors/],
      [
        [
          { hello: hello('orders', 'o-5') },
          { report: report({ custom: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`m${i}`, 1])) }) },
        ],
        /at most 32 metrics/,
      ],
      [[{}], /hello or report/],
    ];
    for (const [messages, reason] of bad) {
      const a = agent(ORDERS);
      for (const m of messages) a.send(m);
      const s = await a.closed();
      assert.equal(s.code, grpc.status.INVALID_ARGUMENT, s.details);
      assert.match(s.details, reason);
    }
    // Still alive and accepting:
    const good = agent(ORDERS);
    good.send({ hello: hello('orders', 'o-good') });
    good.send({ report: report() });
    await waitFor(async () =>
      (
        (await (await http('/v1/services/orders')).json()) as { instances: Array<{ id: string; lastReport?: unknown }> }
      ).instances.some((i) => i.id === 'o-good' && i.lastReport),
    );
    assert.match(await registry.metrics(), /reports_refused_total\{reason="invalid",transport="stream"\} [5-9]/);
  });

  it('lets a reconnecting instance replace its old stream', async () => {
    await start();
    const first = agent(ORDERS);
    first.send({ hello: hello('orders', 'o-1') });
    await waitFor(() => first.directives.length > 0, { timeoutMs: 5000, what: 'hello answered' });
    const second = agent(ORDERS);
    second.send({ hello: hello('orders', 'o-1') });
    const s = await first.closed();
    assert.equal(s.code, grpc.status.ALREADY_EXISTS);
    second.send({ report: report() });
    await waitFor(() => coordinator!.services()[0]!.instances.find((i) => i.id === 'o-1')?.connected === true, {
      timeoutMs: 5000,
      what: 'o-1 connected',
    });
    assert.equal(coordinator!.services()[0]!.instances.length, 1);
  });

  it('closes a stream that does not say hello in time', async () => {
    await start({ limits: { reportsPerSecondPerInstance: 50, helloTimeoutMs: 200 } });
    const silent = agent(ORDERS);
    const s = await silent.closed();
    assert.equal(s.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s.details, /no hello within 200 ms/);
  });

  it('drops and counts stream reports over the per-instance rate limit', async () => {
    await start({ limits: { reportsPerSecondPerInstance: 2 } });
    const a = agent(ORDERS);
    a.send({ hello: hello('orders', 'o-1') });
    for (let i = 0; i < 20; i++) a.send({ report: report({ seq: i + 1 }) });
    await waitFor(async () => /reason="rate_limited",transport="stream"\} 1[0-9]/.test(await registry.metrics()), {
      timeoutMs: 5000,
      what: 'drops counted',
    });
    const accepted = /reports_received_total\{service="orders",transport="stream"\} (\d+)/.exec(
      await registry.metrics(),
    );
    assert.ok(Number(accepted?.[1]) <= 3, `accepted ${accepted?.[1]} (burst)`);
    assert.equal(a.status, undefined, 'the stream stays open');
  });

  it('serves gRPC and HTTP over TLS when configured', async () => {
    const certFile = fileURLToPath(new URL('./fixtures/tls-cert.pem', import.meta.url));
    const keyFile = fileURLToPath(new URL('./fixtures/tls-key.pem', import.meta.url));
    await start({ tls: { certFile, keyFile } });
    const urls = coordinator!.urls();
    assert.match(urls.http, /^https:\/\//);
    assert.match(urls.grpc, /^grpcs:\/\//);
    const { CoordinatorClient } = loadCoordinatorService(grpc);
    const client = new CoordinatorClient(
      urls.grpc.replace('grpcs://', ''),
      grpc.credentials.createSsl(readFileSync(certFile)),
      { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' },
    );
    try {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${ORDERS}`);
      const response = await new Promise((resolve, reject) =>
        client.report(
          { hello: hello('orders', 't-1'), report: report() },
          md,
          { deadline: Date.now() + 5000 },
          (e, r) => (e ? reject(e) : resolve(r)),
        ),
      );
      assert.deepEqual(response, { directive: null });
      const plain = new CoordinatorClient(urls.grpc.replace('grpcs://', ''), grpc.credentials.createInsecure());
      await assert.rejects(
        new Promise((resolve, reject) =>
          plain.report(
            { hello: hello('orders', 't-2'), report: report() },
            md,
            { deadline: Date.now() + 2000 },
            (e, r) => (e ? reject(e) : resolve(r)),
          ),
        ),
      );
      plain.close();
    } finally {
      client.close();
    }
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(`${urls.http}/healthz`, { ca: readFileSync(certFile) }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    assert.deepEqual(JSON.parse(body), { status: 'ok' });
  });

  it('refuses an oversized gRPC message with RESOURCE_EXHAUSTED', async () => {
    await start();
    const b = agent(ORDERS);
    b.send({ hello: hello('orders', 'x'.repeat(70_000)) });
    const s = await b.closed();
    assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED, s.details);
  });

  it('ingests POST /v1/report and refuses bad JSON, wrong content type, big bodies and bad tokens over HTTP', async () => {
    await start();
    const body = JSON.stringify({ hello: hello('users', 'u-1'), report: report() });
    const post = (b: string, token?: string, type = 'application/json') =>
      http('/v1/report', {
        method: 'POST',
        body: b,
        headers: { 'content-type': type, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      });
    const ok = await post(body, USERS);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), {});
    assert.equal((await post(body)).status, 401);
    assert.equal((await post(body, ORDERS)).status, 403);
    assert.equal((await post('{nope', USERS)).status, 400);
    assert.equal((await post(body, USERS, 'text/plain')).status, 415);
    assert.equal((await post('x'.repeat(70_000), USERS)).status, 413);
    const invalid = await post(JSON.stringify({ hello: hello('users', 'u-1'), report: report({ cpu: -1 }) }), USERS);
    assert.equal(invalid.status, 400);
    assert.match(((await invalid.json()) as { error: string }).error, /cpu/);
  });

  it('answers 413 to an oversized chunked body and 400 to a malformed path escape over HTTP', async () => {
    await start();
    const url = new URL(`${coordinator!.urls().http}/v1/report`);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${USERS}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      // No content-length: the size is only known while reading.
      for (let i = 0; i < 10; i++) req.write('x'.repeat(10_000));
      req.end();
    });
    assert.equal(status, 413);
    const bad = await http('/v1/services/%E0%A4%A');
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /escape/);
  });

  it('rate-limits unary reports per instance', async () => {
    await start({ limits: { reportsPerSecondPerInstance: 2 } });
    const a = new TestAgent(coordinator!.urls().grpc, USERS);
    agents.push(a);
    const request = { hello: hello('users', 'u-1'), report: report() };
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => a.unary(request)));
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.ok(refused.length >= 6, `${refused.length} refused`);
    assert.equal((refused[0]!.reason as grpc.ServiceError).code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(await registry.metrics(), /reason="rate_limited",transport="unary"/);
  });

  it('decides, scales up through the actuator and logs the decision with reasons', async () => {
    await start({}, 2);
    for (const id of ['o-1', 'o-2']) {
      const a = agent(ORDERS);
      a.send({ hello: hello('orders', id) });
      a.send({ report: report({ eventLoopUtilization: 1 }) });
    }
    await waitFor(
      async () =>
        coordinator!
          .services()
          .find((s) => s.name === 'orders')!
          .instances.filter((i) => i.lastReport).length === 2,
    );
    const record = await coordinator!.tick('orders');
    assert.equal(record?.currentReplicas, 2);
    assert.equal(record?.desiredReplicas, 4);
    assert.equal(record?.applied, true);
    assert.ok(
      record!.reasons.some((r) => r.includes('eventLoopUtilization')),
      record!.reasons.join('; '),
    );
    assert.deepEqual(actuators.get('orders')!.calls, [{ replicas: 4 }]);
    const log = (await (await http('/v1/services/orders/decisions')).json()) as {
      decisions: Array<{ desiredReplicas: number }>;
    };
    assert.equal(log.decisions[0]?.desiredReplicas, 4);
    assert.match(await registry.metrics(), /shoal_coordinator_desired_replicas\{service="orders"\} 4/);
  });

  it('on scale-down sends drain to the victim, waits for it to go, then removes it', async () => {
    await start({}, 2);
    const streams = new Map<string, TestAgent>();
    for (const [id, elu] of [
      ['o-1', 0.1],
      ['o-2', 0.05],
    ] as const) {
      const a = agent(ORDERS);
      a.send({ hello: hello('orders', id) });
      a.send({ report: report({ eventLoopUtilization: elu }) });
      streams.set(id, a);
    }
    await waitFor(
      () =>
        coordinator!
          .services()
          .find((s) => s.name === 'orders')!
          .instances.filter((i) => i.lastReport).length === 2,
    );
    // The coordinator just started: scale-down waits for a stabilization window of fresh data (0 s here).
    const pending = coordinator!.tick('orders');
    const victimId = await waitFor(
      () => [...streams.entries()].find(([, a]) => a.directives.some((d) => d.drain))?.[0],
    );
    const victim = streams.get(victimId)!;
    assert.equal(victim.directives[0]?.reportIntervalMs, 1000, 'a valid hello is answered with the interval');
    assert.ok(victim.directives[1]?.drain, 'drain directive');
    assert.equal(victim.directives[1]?.drain?.deadlineMs, 2000);
    assert.equal(actuators.get('orders')!.calls.length, 0, 'not removed before it drained');
    const sd = (await (await http('/v1/sd')).json()) as Array<{ labels: Record<string, string> }>;
    assert.ok(!sd.some((g) => g.labels.instance === victimId), 'a draining instance leaves service discovery at once');
    victim.stream!.end(); // the agent finished draining and exits
    const record = await pending;
    assert.equal(record?.desiredReplicas, 1);
    assert.deepEqual(record?.drained, { [victimId]: 'drained' });
    assert.deepEqual(actuators.get('orders')!.calls, [{ replicas: 1, victims: [victimId] }]);
  });

  it('holds scale-down after start until one stabilization window of fresh data', async () => {
    const policy = {
      targets: [{ metric: 'eventLoopUtilization', value: 0.5 }],
      panic: false,
      scaleUpHeadroom: 0,
      forecast: false,
      behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
    };
    await start(
      { services: [{ name: 'orders', token: ORDERS, policy, actuator: { type: 'command', command: 'true' } }] },
      3,
    );
    const a = agent(ORDERS);
    a.send({ hello: hello('orders', 'o-1') });
    a.send({ report: report({ eventLoopUtilization: 0.01 }) });
    await waitFor(() => coordinator!.services()[0]!.instances.some((i) => i.lastReport));
    const record = await coordinator!.tick('orders');
    assert.equal(record?.desiredReplicas, 3);
    assert.ok(
      record!.reasons.some((r) => r.startsWith('holding scale-down')),
      record!.reasons.join('; '),
    );
    assert.equal(actuators.get('orders')!.calls.length, 0);
  });

  it('in dry-run decides and logs but does not actuate', async () => {
    await start({ dryRun: true }, 1);
    const a = agent(ORDERS);
    a.send({ hello: hello('orders', 'o-1') });
    a.send({ report: report({ eventLoopUtilization: 1 }) });
    await waitFor(() => coordinator!.services()[0]!.instances.some((i) => i.lastReport));
    const record = await coordinator!.tick('orders');
    assert.equal(record?.desiredReplicas, 2);
    assert.equal(record?.dryRun, true);
    assert.equal(record?.applied, false);
    assert.equal(actuators.get('orders')!.calls.length, 0);
  });

  it('refuses to start without tokens, and keeps the running config when a reload is invalid', async () => {
    const noTokens = config();
    for (const s of noTokens.services!) delete (s as { token?: string }).token;
    const c = createCoordinator(noTokens);
    await assert.rejects(
      c.start(),
      (e: Error) => hasErrorCode(e, 'SHOAL_ERR_CONFIG') && /refusing to start/.test(e.message),
    );
    await c.close();
    await start();
    const bad = config();
    (bad.services![0]!.policy as { targets: Array<{ value: number }> }).targets[0]!.value = -1;
    await assert.rejects(coordinator!.reload(bad), /services\[0\]\.policy\.targets\[0\]\.value: must be > 0, got -1/);
    assert.equal(coordinator!.config.services[0]!.policy.targets![0]!.value, 0.5);
    const good = config({ syncPeriodMs: 1000 });
    good.services = good.services!.slice(0, 1);
    await coordinator!.reload(good);
    assert.deepEqual(
      coordinator!.services().map((s) => s.name),
      ['orders'],
    );
  });

  it('serves the KEDA external scaler: metric spec, metrics and activity from the decisions', async () => {
    await start({ keda: { token: KEDA } }, 1);
    const a = agent(ORDERS);
    a.send({ hello: hello('orders', 'o-1') });
    a.send({ report: report({ eventLoopUtilization: 1, inFlight: 12 }) });
    await waitFor(() => coordinator!.services()[0]!.instances.some((i) => i.lastReport));
    await coordinator!.tick('orders');
    const pkg = loadSync(EXTERNAL_SCALER_PROTO_PATH, { keepCase: true, longs: Number, defaults: true });
    const Scaler = (
      grpc.loadPackageDefinition(pkg) as unknown as {
        externalscaler: { ExternalScaler: grpc.ServiceClientConstructor };
      }
    ).externalscaler.ExternalScaler;
    const client = new Scaler(coordinator!.urls().keda, grpc.credentials.createInsecure());
    const rpc = client as unknown as Record<string, (req: unknown, cb: (e: Error | null, r: unknown) => void) => void>;
    const call = <T>(method: string, req: unknown) =>
      new Promise<T>((resolve, reject) => rpc[method]!.call(client, req, (e, r) => (e ? reject(e) : resolve(r as T))));
    try {
      const ref = { name: 'orders-so', namespace: 'prod', scalerMetadata: { service: 'orders', token: KEDA } };
      assert.deepEqual(await call('IsActive', ref), { result: true });
      const spec = await call<{ metricSpecs: Array<{ metricName: string; targetSizeFloat: number }> }>(
        'GetMetricSpec',
        ref,
      );
      assert.deepEqual(
        spec.metricSpecs.map((m) => [m.metricName, m.targetSizeFloat]),
        [['shoal-orders-replicas', 1]],
      );
      const values = await call<{ metricValues: Array<{ metricName: string; metricValueFloat: number }> }>(
        'GetMetrics',
        {
          scaledObjectRef: ref,
          metricName: 'shoal-orders-replicas',
        },
      );
      assert.deepEqual(
        values.metricValues.map((m) => [m.metricName, m.metricValueFloat]),
        [['shoal-orders-replicas', 2]],
      );
      const inflight = { ...ref, scalerMetadata: { service: 'orders', metric: 'inFlight', target: '5', token: KEDA } };
      const v2 = await call<{ metricValues: Array<{ metricValueFloat: number }> }>('GetMetrics', {
        scaledObjectRef: inflight,
        metricName: 'x',
      });
      assert.equal(v2.metricValues[0]?.metricValueFloat, 12);
      await assert.rejects(
        call('IsActive', { name: 'nope', namespace: 'x', scalerMetadata: { token: KEDA } }),
        /NOT_FOUND|no Shoal service/,
      );
      const stream = (
        client as unknown as { StreamIsActive(r: unknown): grpc.ClientReadableStream<{ result: boolean }> }
      ).StreamIsActive(ref);
      const first = await new Promise<{ result: boolean }>((resolve) => stream.once('data', resolve));
      assert.equal(first.result, true);
      stream.cancel();
      stream.on('error', () => {});
    } finally {
      client.close();
    }
  });
});
