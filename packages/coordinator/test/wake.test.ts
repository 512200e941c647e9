import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createCoordinator, type Coordinator, type CoordinatorConfigInput } from '@shoal/coordinator';
import { parseWakeReport, WakeDemand } from '@shoal/coordinator/internal';
import { waitFor } from '../../../test/kit/index.js';

// Issue #20: POST /v1/services/:name/wake — the client-wake trust boundary and the sizing of 0 → N.
const AGENT = 'orders-agent-token-0123456789';
const WAKE = 'orders-wake-token-0123456789';

function config(): CoordinatorConfigInput {
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 3_600_000,
    services: [
      {
        name: 'orders',
        token: AGENT,
        minReplicas: 0,
        maxReplicas: 6,
        wake: { token: WAKE, callsPerReplica: 4 },
        policy: { targets: [{ metric: 'inFlight', value: 10 }] },
        actuator: { type: 'command', command: 'true' },
      },
      {
        name: 'billing',
        token: 'billing-agent-token-0123456789',
        policy: { targets: [{ metric: 'inFlight', value: 10 }] },
        actuator: { type: 'command', command: 'true' },
      },
    ],
  };
}

describe('waking from zero on client calls (coordinator endpoint)', function () {
  this.timeout(20_000);
  let coordinator: Coordinator | undefined;
  let registry: Registry;

  beforeEach(async () => {
    registry = new Registry();
    coordinator = createCoordinator(config(), { registry });
    await coordinator.start();
  });

  afterEach(async () => {
    await coordinator?.close();
    coordinator = undefined;
  });

  async function post(
    service: string,
    body: unknown,
    token: string | undefined,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${coordinator!.urls().http}/v1/services/${service}/wake`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('refuses anonymous, wrong-token and malformed demand; nothing reaches the actuator', async () => {
    const actuator = coordinator!.actuator('orders')!;
    assert.equal((await post('orders', { client: 'c1', waiting: 5 }, undefined)).status, 401);
    assert.equal((await post('orders', { client: 'c1', waiting: 5 }, 'x'.repeat(30))).status, 401);
    // The agents' token is not the wake token.
    const agent = await post('orders', { client: 'c1', waiting: 5 }, AGENT);
    assert.equal(agent.status, 401);
    assert.match(String(agent.body.error), /not the wake token of "orders"/);
    for (const bad of [
      { client: 'c1', waiting: -1 },
      { client: 'c1', waiting: 10_001 },
      { client: 'c1', waiting: 1.5 },
      { client: 'c1', waiting: '5' },
      { client: '../etc', waiting: 5 },
      { client: 'c1', waiting: 5, replicas: 99 },
      [5],
      'not json',
    ]) {
      const r = await post('orders', bad, WAKE);
      assert.equal(r.status, 400, `${JSON.stringify(bad)} → ${r.status} ${JSON.stringify(r.body)}`);
    }
    const none = await post('billing', { client: 'c1', waiting: 5 }, WAKE);
    assert.equal(none.status, 404);
    assert.match(String(none.body.error), /does not wake on client calls/);
    assert.equal((await post('nope', { client: 'c1', waiting: 5 }, WAKE)).status, 404);
    assert.equal(await actuator.getReplicas(), 0);
    const text = await registry.metrics();
    // 3 refused tokens + 7 invalid reports ('not json' is refused by the parser before it is counted).
    assert.match(text, /shoal_coordinator_wake_reports_total\{service="orders",outcome="refused"\} 10/);
  });

  it('scales 0 → ceil(waiting / callsPerReplica) at once, summed over clients and capped by maxReplicas', async () => {
    const actuator = coordinator!.actuator('orders')!;
    const first = await post('orders', { client: 'a', waiting: 9 }, WAKE);
    assert.equal(first.status, 202);
    assert.equal(first.body.waiting, 9);
    await waitFor(async () => (await actuator.getReplicas()) === 3, { what: '0 → ceil(9 / 4) = 3' });
    const woke = coordinator!.decisions('orders')!.find((d) => d.currentReplicas === 0 && d.applied)!;
    assert.ok(
      woke.reasons.includes('woken from zero by client calls (9 calls waiting at clients, 4 per replica) → 3'),
      woke.reasons.join('; '),
    );
    assert.equal(woke.wokenByCalls, 9);
    // A second client's calls add up; the total is capped by maxReplicas (6), never more.
    await post('orders', { client: 'b', waiting: 40 }, WAKE);
    await waitFor(async () => (await actuator.getReplicas()) === 6, { what: '49 waiting → capped at 6' });
    const text = await registry.metrics();
    assert.match(text, /shoal_coordinator_wakes_total\{service="orders"\} 1/);
    assert.match(text, /shoal_coordinator_wake_waiting_calls\{service="orders"\} 49/);
  });

  it('a service with no wake token configured refuses every report (no anonymous wake, even in insecure dev)', async () => {
    await coordinator!.close();
    const input = config();
    input.insecureDev = true;
    coordinator = createCoordinator(input, { registry: new Registry() });
    await coordinator.start();
    assert.equal((await post('orders', { client: 'c1', waiting: 5 }, undefined)).status, 401);
    assert.equal((await post('billing', { client: 'c1', waiting: 5 }, undefined)).status, 404);
  });
});

describe('WakeDemand', () => {
  it('keeps each client’s latest count until its TTL, and a bounded table', () => {
    const d = new WakeDemand(10_000);
    d.record(parseWakeReport({ client: 'a', waiting: 5 }), 0);
    d.record(parseWakeReport({ client: 'a', waiting: 7 }), 1000);
    d.record(parseWakeReport({ client: 'b', waiting: 3 }), 2000);
    assert.equal(d.total(2000), 10);
    assert.equal(d.total(11_500), 3, "a's entry expired");
    d.record({ client: 'b', waiting: 0 }, 12_000);
    assert.equal(d.total(12_000), 0);
    for (let i = 0; i < 1500; i++) d.record({ client: `c${i}`, waiting: 1 }, 13_000);
    assert.equal(d.clients(13_000), 1000);
  });
});
