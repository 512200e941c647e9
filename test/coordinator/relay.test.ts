import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { ManualClock, type TimerHandle } from '@shoal/core';
import { createServer, type Server } from 'node:http';
import { createCoordinator, type Coordinator, type CoordinatorConfigInput } from '@shoal/coordinator';
import { createDispatcher } from '@shoal/http';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { loadCoordinatorService } from '@shoal/protocol';
import { startTestConsul, type TestConsul } from '../support/consul.js';
import { RecordingActuator, TestAgent, hello, report } from '../../packages/coordinator/test/support/agent-client.js';
import { waitFor } from '../kit/index.js';

const TOKEN = 'orders-token-0123456789abcdef';
const WAKE_TOKEN = 'sleepy-wake-token-0123456789';

function config(consulUrl: string, withSleepy = false): CoordinatorConfigInput {
  // A service at zero that wakes on client calls (issue #20): 3 waiting calls per replica.
  const sleepy = {
    name: 'sleepy',
    token: 'sleepy-agent-token-0123456789',
    minReplicas: 0,
    maxReplicas: 5,
    wake: { token: WAKE_TOKEN, callsPerReplica: 3 },
    policy: { targets: [{ metric: 'inFlight' as const, value: 3 }] },
    actuator: { type: 'command' as const, command: 'true' },
  };
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 3_600_000,
    consul: { url: consulUrl, requestTimeoutMs: 3000 },
    ha: {
      enabled: true,
      sessionTtlMs: 10_000,
      lockDelayMs: 200,
      lockKey: 'relay/leader',
      stateKeyPrefix: 'relay/state',
    },
    services: [
      {
        name: 'orders',
        token: TOKEN,
        minReplicas: 3,
        maxReplicas: 10,
        drainTimeoutMs: 5000,
        policy: {
          targets: [{ metric: 'eventLoopUtilization', value: 0.5 }],
          panic: false,
          forecast: false,
          scaleUpHeadroom: 0,
          behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
        },
        actuator: { type: 'command', command: 'true' },
      },
      ...(withSleepy ? [sleepy] : []),
    ],
  };
}

describe('coordinator followers relay agents to the leader (consul-dev)', function () {
  this.timeout(60_000);
  let consul: TestConsul;
  let a: Coordinator | undefined;
  let b: Coordinator | undefined;
  const agents: TestAgent[] = [];
  let actuatorA: RecordingActuator;

  beforeEach(async () => {
    consul = await startTestConsul();
  });
  afterEach(async () => {
    for (const x of agents.splice(0)) x.close();
    await b?.close();
    await a?.close();
    a = b = undefined;
    await consul.close();
  });

  it('relays streams, unary and HTTP reports to the leader, and the leader’s drain reaches an agent on the follower', async () => {
    actuatorA = new RecordingActuator(4);
    a = createCoordinator(config(consul.url), { id: 'a', actuatorFactory: () => actuatorA });
    await a.start();
    await waitFor(() => a!.isLeader, { timeoutMs: 10_000, what: 'a to lead' });
    b = createCoordinator(config(consul.url), { id: 'b', actuatorFactory: () => new RecordingActuator(4) });
    await b.start();
    await waitFor(
      async () =>
        ((await (await fetch(`${b!.urls().http}/readyz`)).json()) as { reason: string }).reason === 'following a',
      { timeoutMs: 10_000, what: 'b to follow a' },
    );

    const onB = new TestAgent(b.urls().grpc, TOKEN).open();
    const onA = new TestAgent(a.urls().grpc, TOKEN).open();
    agents.push(onB, onA);
    onB.send({ hello: hello('orders', 'on-b') });
    onB.send({ report: report({ eventLoopUtilization: 0.01 }) });
    onA.send({ hello: hello('orders', 'on-a') });
    onA.send({ report: report({ eventLoopUtilization: 0.2 }) });
    const unary = new TestAgent(b.urls().grpc, TOKEN);
    agents.push(unary);
    assert.deepEqual(
      await unary.unary({ hello: hello('orders', 'unary-via-b'), report: report({ eventLoopUtilization: 0.2 }) }),
      { directive: null },
    );
    const http = await fetch(`${b.urls().http}/v1/report`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ hello: hello('orders', 'http-via-b'), report: report({ eventLoopUtilization: 0.2 }) }),
    });
    assert.equal(http.status, 200);
    // A refusal by the leader reaches the client through the follower.
    await assert.rejects(
      unary.unary({ hello: hello('orders', 'x'), report: report() }, 'wrong-token-0123456789abcdef'),
      (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED,
    );

    const ids = await waitFor(
      () => {
        const inst = a!.services()[0]!.instances.filter((i) => i.lastReport);
        return inst.length === 4 ? inst.map((i) => i.id).sort() : undefined;
      },
      { timeoutMs: 10_000, what: 'all four instances in the leader window' },
    );
    assert.deepEqual(ids, ['http-via-b', 'on-a', 'on-b', 'unary-via-b']);
    assert.equal(b.services()[0]!.instances.length, 0, 'the follower keeps no window of its own');

    // The leader scales 4 → 3 and drains the least loaded instance, whose stream is held by the follower.
    const pending = a.tick('orders');
    await waitFor(() => onB.directives.some((d) => d.drain), {
      timeoutMs: 10_000,
      what: 'the drain to reach the agent on b',
    });
    onB.stream!.end();
    const record = await pending;
    assert.deepEqual(record?.victims, ['on-b']);
    assert.deepEqual(record?.drained, { 'on-b': 'drained' });
    assert.deepEqual(actuatorA.calls, [{ replicas: 3, victims: ['on-b'] }]);
  });

  it("a follower forwards a client's wake to the leader: a burst sent through the follower wakes the service sized to it, every call succeeds", async () => {
    const sleepy = new RecordingActuator(0);
    a = createCoordinator(config(consul.url, true), {
      id: 'a',
      actuatorFactory: (s) => (s.name === 'sleepy' ? sleepy : new RecordingActuator(4)),
    });
    await a.start();
    await waitFor(() => a!.isLeader, { timeoutMs: 10_000, what: 'a to lead' });
    const registryB = new Registry();
    b = createCoordinator(config(consul.url, true), {
      id: 'b',
      registry: registryB,
      actuatorFactory: () => new RecordingActuator(0),
    });
    await b.start();
    await waitFor(
      async () =>
        ((await (await fetch(`${b!.urls().http}/readyz`)).json()) as { reason: string }).reason === 'following a',
      { timeoutMs: 10_000, what: 'b to follow a' },
    );
    const wakeViaB = (token: string, waiting: number, extra: Record<string, string> = {}) =>
      fetch(`${b!.urls().http}/v1/services/sleepy/wake`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...extra },
        body: JSON.stringify({ client: 'probe', waiting }),
      });
    // The follower checks the token itself (a wrong one never reaches the leader) and never relays a relayed wake.
    assert.equal((await wakeViaB('not-the-wake-token-0123456789', 1)).status, 401);
    const relayed = await wakeViaB(WAKE_TOKEN, 1, { 'x-shoal-forwarded-by': 'c' });
    assert.equal(relayed.status, 503);
    assert.equal(sleepy.calls.length, 0);

    // A client that knows only the follower: 6 calls wait, the leader starts ceil(6 / 3) = 2 replicas.
    const dispatcher = createDispatcher({
      consul: { url: consul.url },
      activator: { coordinator: b.urls().http, token: WAKE_TOKEN, maxWaitMs: 20_000 },
      retry: false,
    });
    let server: Server | undefined;
    try {
      const calls = Array.from({ length: 6 }, () =>
        request('http://sleepy.service.consul/', { dispatcher }).then(
          async (r) => `${r.statusCode} ${await r.body.text()}`,
        ),
      );
      await waitFor(() => sleepy.count === 2, {
        timeoutMs: 10_000,
        what: `the leader to wake sleepy to 2 (calls: ${JSON.stringify(sleepy.calls)})`,
      });
      assert.ok(
        sleepy.calls.every((c) => c.replicas <= 2),
        JSON.stringify(sleepy.calls),
      );
      const forwarded = (await registryB.getSingleMetric('shoal_coordinator_wake_reports_total')?.get())?.values.find(
        (v) => v.labels.outcome === 'forwarded',
      );
      assert.ok((forwarded?.value ?? 0) >= 1, 'the follower counts what it forwarded');
      // The first replica passes: every waiting call goes out.
      server = createServer((_req, res) => res.end('awake'));
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      const registered = await fetch(`${consul.url}/v1/agent/service/register`, {
        method: 'PUT',
        headers: consul.token ? { 'x-consul-token': consul.token } : {},
        body: JSON.stringify({ ID: 'sleepy-1', Name: 'sleepy', Address: '127.0.0.1', Port: port }),
      });
      assert.equal(registered.status, 200);
      assert.deepEqual(await Promise.all(calls), Array(6).fill('200 awake'));
    } finally {
      await dispatcher.close();
      server?.close();
    }
  });

  it('backs off exponentially while the leader refuses every relayed stream', async () => {
    // A "leader" that holds the lock but refuses every stream (e.g. it is at its stream limit).
    let refused = 0;
    const ghost = new grpc.Server();
    const { CoordinatorService } = loadCoordinatorService(grpc);
    ghost.addService(CoordinatorService, {
      connect: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        refused++;
        call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'too many agent streams' });
      },
      report: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED }),
    });
    const ghostPort = await new Promise<number>((resolve, reject) =>
      ghost.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    try {
      const put = async (path: string, body?: string) => {
        const res = await fetch(`${consul.url}${path}`, {
          method: 'PUT',
          ...(body !== undefined ? { body } : {}),
          headers: consul.token ? { 'x-consul-token': consul.token } : {},
        });
        assert.equal(res.status, 200, `PUT ${path}`);
        return res.json() as Promise<unknown>;
      };
      const { ID } = (await put('/v1/session/create', JSON.stringify({ Name: 'ghost' }))) as { ID: string };
      const leader = JSON.stringify({ id: 'ghost', grpcUrl: `grpc://127.0.0.1:${ghostPort}` });
      assert.equal(await put(`/v1/kv/relay/leader?acquire=${ID}`, leader), true);

      // Relay retries run on this clock; the stack tells them apart from the election's and the loops' timers.
      const relayDelays: number[] = [];
      const clock = new (class extends ManualClock {
        override setTimeout(fn: () => void, ms: number): TimerHandle {
          // Capture a deep enough stack whatever another module set Error.stackTraceLimit to.
          const limit = Error.stackTraceLimit;
          Error.stackTraceLimit = 50;
          const stack = new Error().stack ?? '';
          Error.stackTraceLimit = limit;
          if (/\bretry\b.*ingest\/relay\.[jt]s/.test(stack)) relayDelays.push(ms);
          return super.setTimeout(fn, ms);
        }
      })(Date.now());
      b = createCoordinator(config(consul.url), { id: 'b', clock, actuatorFactory: () => new RecordingActuator(4) });
      await b.start();
      await waitFor(
        async () =>
          ((await (await fetch(`${b!.urls().http}/readyz`)).json()) as { reason: string }).reason === 'following ghost',
        { timeoutMs: 10_000, what: 'b to follow the ghost' },
      );
      const agent = new TestAgent(b.urls().grpc, TOKEN).open();
      agents.push(agent);
      agent.send({ hello: hello('orders', 'relayed') });
      for (let i = 0; i < 7; i++) {
        await waitFor(() => relayDelays.length > i, {
          timeoutMs: 10_000,
          what: `relay retry ${i + 1} to be scheduled`,
        });
        clock.advance(relayDelays[i]!);
      }
      await waitFor(() => refused >= 8, { timeoutMs: 10_000, what: `the eighth relay attempt (${refused} so far)` });
      // 500 ms doubling up to 15 s, upper half jittered: at least 250, 500, 1000, ... 7500, never more than 15 s.
      relayDelays.slice(0, 7).forEach((ms, i) => {
        assert.ok(
          ms >= Math.min(250 * 2 ** i, 7500) && ms <= 15_000,
          `retry ${i + 1} waited ${ms} ms (${relayDelays.join(', ')})`,
        );
      });
    } finally {
      ghost.forceShutdown();
    }
  });

  it('a leader that loses the lock stops deciding even when the new leader advertises an unusable address', async () => {
    a = createCoordinator(config(consul.url), { id: 'a', actuatorFactory: () => new RecordingActuator(4) });
    await a.start();
    await waitFor(() => a!.isLeader, { timeoutMs: 10_000, what: 'a to lead' });
    const headers: Record<string, string> = consul.token ? { 'x-consul-token': consul.token } : {};
    const put = async (path: string, body?: string) =>
      (await fetch(`${consul.url}${path}`, { method: 'PUT', headers, ...(body !== undefined ? { body } : {}) })).json();
    const { ID: ghost } = (await put('/v1/session/create', JSON.stringify({ Name: 'ghost' }))) as { ID: string };
    const value = JSON.stringify({ id: 'ghost', grpcUrl: 'dns://not-an-ip/x:1' });
    // Take the lock from a (release, then acquire at once; a may win a race in between, so try again).
    await waitFor(
      async () => {
        const [item] = (await (await fetch(`${consul.url}/v1/kv/relay/leader`, { headers })).json()) as Array<{
          Session?: string;
        }>;
        if (item?.Session && item.Session !== ghost) await put(`/v1/kv/relay/leader?release=${item.Session}`, '{}');
        return (await put(`/v1/kv/relay/leader?acquire=${ghost}`, value)) === true;
      },
      { timeoutMs: 10_000, what: 'the ghost to take the lock' },
    );
    await waitFor(() => !a!.isLeader, { timeoutMs: 10_000, what: 'a to step down' });
    assert.equal(await a.tick('orders'), undefined, 'a still decides after losing the lock');
  });
});
