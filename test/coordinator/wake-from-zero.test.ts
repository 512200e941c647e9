import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createCoordinator, type Coordinator, type DecisionRecord } from '@shoal/coordinator';
import { createClient, register } from '@shoal/grpc';
import { createDispatcher, type ShoalDispatcher } from '@shoal/http';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { startTestConsul, type TestConsul } from '../support/consul.js';
import { survivors, waitFor } from '../kit/index.js';
import { TypedEchoClient, type EchoCaller } from '../../packages/grpc/test/support/echo.js';

// Issue #20: a service at zero replicas (local actuator) woken by a burst of client calls, over real processes.
const REPLICA = fileURLToPath(new URL('../chaos/fixtures/agent-replica.mjs', import.meta.url));
const AGENT_TOKEN = 'wake-agent-token-0123456789';
const WAKE_TOKEN = 'wake-client-token-0123456789';
const BURST = 50;
/** The policy's inFlight target: 25 calls per replica, so a burst of 50 asks for 2 replicas (not 1, not 50). */
const PER_REPLICA = 25;

function service(name: string, mode: 'grpc' | 'http', consulUrl: string) {
  return {
    name,
    token: `${AGENT_TOKEN}-${name}`,
    minReplicas: 0,
    maxReplicas: 6,
    idleCooldownMs: 600_000,
    reportIntervalMs: 500,
    drainTimeoutMs: 3000,
    wake: { token: WAKE_TOKEN },
    policy: { targets: [{ metric: 'inFlight' as const, value: PER_REPLICA }], panic: false, forecast: false },
    actuator: {
      type: 'local' as const,
      command: process.execPath,
      args: [REPLICA],
      env: { MODE: mode, CONSUL_URL: consulUrl },
      stopTimeoutMs: 1000,
    },
  };
}

describe('wake from zero by client calls (local actuator, real processes)', function () {
  this.timeout(60_000);
  let consul: TestConsul | undefined;
  let coordinator: Coordinator | undefined;
  let client: EchoCaller | undefined;
  let dispatcher: ShoalDispatcher | undefined;
  const pids = new Set<number>();

  afterEach(async () => {
    client?.close();
    await dispatcher?.close();
    await coordinator?.close();
    await consul?.close();
    register({});
    client = dispatcher = coordinator = consul = undefined;
  });

  it('a burst of 50 gRPC and 50 HTTP calls to services at 0 all succeed, sized to the burst, nothing left after', async () => {
    consul = await startTestConsul();
    const logger = pino({ level: process.env.SHOAL_TEST_LOG ?? 'silent' });
    coordinator = createCoordinator(
      {
        listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
        syncPeriodMs: 5000,
        services: [service('wakegrpc', 'grpc', consul.url), service('wakehttp', 'http', consul.url)],
      },
      { logger, env: process.env },
    );
    await coordinator.start();
    const activator = { coordinator: coordinator.urls().http, token: WAKE_TOKEN, maxWaitMs: 30_000 };
    const registry = new Registry();
    register({ consul: { url: consul.url }, registry, activator });
    client = createClient(TypedEchoClient, 'consul:///wakegrpc');
    dispatcher = createDispatcher({ consul: { url: consul.url }, registry, activator, retry: false });
    for (const name of ['wakegrpc', 'wakehttp']) {
      assert.equal(await coordinator.actuator(name)!.getReplicas(), 0, `${name} starts at 0`);
    }
    const watching = setInterval(() => {
      for (const name of ['wakegrpc', 'wakehttp']) {
        for (const r of coordinator?.actuator(name)?.replicas() ?? []) {
          if (r.pid) pids.add(r.pid);
          if (r.replicaPid) pids.add(r.replicaPid);
        }
      }
    }, 50);

    const grpcCalls = Array.from(
      { length: BURST },
      (_, i) =>
        new Promise<string>((resolve, reject) =>
          client!.echo({ msg: `g${i}` }, { deadline: Date.now() + 40_000 }, (e, r) =>
            e ? reject(e) : resolve(r!.server),
          ),
        ),
    );
    const httpCalls = Array.from({ length: BURST }, async () => {
      const res = await request('http://wakehttp.service.consul/', { dispatcher });
      await res.body.text();
      return res.statusCode;
    });
    const [grpcResults, httpResults] = await Promise.all([
      Promise.allSettled(grpcCalls),
      Promise.allSettled(httpCalls),
    ]);
    clearInterval(watching);
    const failed = [...grpcResults, ...httpResults].filter((r) => r.status === 'rejected');
    assert.deepEqual(
      failed.map((f) => String((f as PromiseRejectedResult).reason)),
      [],
      'every call of the burst succeeded',
    );
    assert.ok(httpResults.every((r) => r.status === 'fulfilled' && r.value === 200));

    for (const name of ['wakegrpc', 'wakehttp']) {
      const woke: DecisionRecord | undefined = coordinator
        .decisions(name)!
        .find((d: DecisionRecord) => d.currentReplicas === 0 && d.applied);
      assert.ok(woke, `${name}: a wake decision was applied`);
      // Sized to the burst: ceil(50 / 25) = 2 replicas. A client may report before its last calls joined.
      assert.equal(woke.desiredReplicas, Math.ceil(BURST / PER_REPLICA), woke.reasons.join('; '));
      assert.ok(
        woke.reasons.some((r: string) => r.startsWith(`woken from zero by client calls (${BURST} calls waiting`)),
        woke.reasons.join('; '),
      );
    }
    const text = await registry.metrics();
    assert.match(text, /shoal_activator_calls_total\{service="wakegrpc",outcome="released"\} 50/);
    assert.match(text, /shoal_activator_calls_total\{service="wakehttp",outcome="released"\} 50/);

    assert.ok(pids.size >= 4, `replica processes seen: ${pids.size}`);
    client.close();
    client = undefined;
    await coordinator.close();
    coordinator = undefined;
    await waitFor(() => survivors(pids).length === 0, { timeoutMs: 10_000, what: 'every replica process gone' });
  });
});
