import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Consul from 'consul';
import {
  createCoordinator,
  type Coordinator,
  type CoordinatorConfigInput,
  type CoordinatorUrls,
} from '@shoal/coordinator';
import { startTestConsul, type TestConsul } from '../support/consul.js';
import { TestAgent, hello, report } from '../../packages/coordinator/test/support/agent-client.js';

const PROCESS = fileURLToPath(new URL('./fixtures/coordinator-process.mjs', import.meta.url));
const TOKEN = 'orders-token-0123456789abcdef';
const TTL_MS = 10_000;
const LOCK_DELAY_MS = 500;
/** The scale-down stabilization window: B holds scale-down for this long after it takes over. */
const STABILIZATION_S = 30;

function config(consulUrl: string): CoordinatorConfigInput {
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 300,
    consul: { url: consulUrl, requestTimeoutMs: 3000 },
    ha: {
      enabled: true,
      sessionTtlMs: TTL_MS,
      lockDelayMs: LOCK_DELAY_MS,
      lockKey: 'test/shoal/leader',
      stateKeyPrefix: 'test/shoal/state',
    },
    services: [
      {
        name: 'orders',
        token: TOKEN,
        minReplicas: 1,
        maxReplicas: 10,
        reportIntervalMs: 200,
        policy: {
          targets: [{ metric: 'eventLoopUtilization', value: 0.5 }],
          panic: false,
          scaleUpHeadroom: 0,
          forecast: false,
          behavior: { scaleDown: { stabilizationWindowSeconds: STABILIZATION_S } },
        },
        // A command that accepts any count: the test watches decisions, not a platform.
        actuator: { type: 'command', command: process.execPath, args: ['-e', ''] },
      },
    ],
  };
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function json<T>(url: string): Promise<T> {
  return (await (await fetch(url)).json()) as T;
}

describe('coordinator leader election and failover (two coordinators, consul-dev)', function () {
  this.timeout(90_000);
  let consul: TestConsul;
  let childA: ChildProcess | undefined;
  let b: Coordinator | undefined;
  let agent: TestAgent | undefined;

  beforeEach(async () => {
    consul = await startTestConsul();
  });
  afterEach(async () => {
    agent?.close();
    agent = undefined;
    if (childA && childA.exitCode === null && childA.signalCode === null) childA.kill('SIGKILL');
    childA = undefined;
    await b?.close();
    b = undefined;
    await consul.close();
  });

  it('elects one leader, relays a follower’s agents to it, and fails over when the leader is SIGKILLed', async () => {
    childA = spawn(process.execPath, [PROCESS, JSON.stringify(config(consul.url)), 'coord-a'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const urlsA = await new Promise<CoordinatorUrls>((resolve, reject) => {
      createInterface({ input: childA!.stdout! }).once('line', (l) => resolve(JSON.parse(l) as CoordinatorUrls));
      childA!.once('exit', (code) => reject(new Error(`coordinator A exited (${code})`)));
    });
    await until(
      'A to lead',
      async () => (await json<{ coordinator?: { leader: boolean } }>(`${urlsA.http}/v1/services`)).coordinator?.leader,
      10_000,
    );

    b = createCoordinator(config(consul.url), { id: 'coord-b' });
    await b.start();
    await until(
      'B to follow A',
      async () => {
        const r = await json<{ status: string; reason: string }>(`${b!.urls().http}/readyz`);
        return r.reason === 'following coord-a';
      },
      10_000,
    );
    assert.equal(b.isLeader, false);

    // An agent connected to the follower: its reports reach the leader's window through the relay.
    agent = new TestAgent(b.urls().grpc, TOKEN).open();
    agent.send({ hello: hello('orders', 'o-1') });
    let elu = 1;
    const sendReport = () => agent!.send({ report: report({ eventLoopUtilization: elu }) });
    sendReport();
    const timer = setInterval(sendReport, 200);
    try {
      await until(
        'the report relayed to A',
        async () => {
          const s = await json<{ services: Array<{ instances: Array<{ id: string; lastReport?: unknown }> }> }>(
            `${urlsA.http}/v1/services`,
          );
          return s.services[0]!.instances.some((i) => i.id === 'o-1' && i.lastReport);
        },
        10_000,
      );

      // Load is high: A scales up and persists its policy state in Consul KV.
      const kv = new Consul({ host: consul.host, port: consul.port });
      const saved = await until(
        'a scale-up persisted in Consul KV',
        async () => {
          const item = (await kv.kv.get('test/shoal/state/orders')) as { Value?: string } | null;
          const v = item?.Value ? (JSON.parse(item.Value) as { by: string; desiredReplicas: number }) : undefined;
          return v && v.desiredReplicas >= 2 ? v : undefined;
        },
        10_000,
      );
      assert.equal(saved.by, 'coord-a');
      // Then load drops; A itself still holds scale-down (30 s window of fresh data since it started).
      elu = 0.05;
      await new Promise((r) => setTimeout(r, 600));

      // The leader dies without releasing its lock.
      const killedAt = Date.now();
      childA.kill('SIGKILL');
      await until('B to take over', () => b!.isLeader, 2 * TTL_MS + LOCK_DELAY_MS + 5000);
      const takeoverMs = Date.now() - killedAt;
      // Consul invalidates a session 2 × TTL after its last renewal (SessionTTLMultiplier), then lock-delay applies.
      assert.ok(takeoverMs <= 2 * TTL_MS + LOCK_DELAY_MS + 3000, `took over after ${takeoverMs} ms`);

      // B resumes from the persisted state (count included), takes the agent's stream locally, and holds
      // scale-down until it has seen a stabilization window of fresh data.
      // The restored state still holds A's last high recommendations in its stabilization window, so decide()
      // itself keeps the count until they age out (~STABILIZATION_S after the kill, which is ~2 × TTL before the
      // takeover); B's own hold lasts STABILIZATION_S from the takeover, so the hold shows within that bound.
      const held = await until(
        'B holding a scale-down on fresh data',
        () => b!.decisions('orders')!.find((d) => d.reasons.some((r) => r.startsWith('holding scale-down'))),
        STABILIZATION_S * 1000,
      );
      assert.equal(held.currentReplicas, saved.desiredReplicas, 'B resumed the count A had set');
      assert.equal(held.desiredReplicas, held.currentReplicas);
      assert.ok(
        b.services()[0]!.instances.some((i) => i.id === 'o-1' && i.connected),
        'the agent stream is local to B',
      );
      const decisions = await json<{ decisions: Array<{ currentReplicas: number; desiredReplicas: number }> }>(
        `${b.urls().http}/v1/services/orders/decisions`,
      );
      assert.deepEqual(
        decisions.decisions.filter((d) => d.desiredReplicas < d.currentReplicas),
        [],
        'no scale-down after takeover',
      );
      await until(
        'B to persist state',
        async () => {
          const v = (await kv.kv.get('test/shoal/state/orders')) as { Value: string };
          return (JSON.parse(v.Value) as { by: string }).by === 'coord-b';
        },
        5000,
      );
    } finally {
      clearInterval(timer);
    }
  });
});
