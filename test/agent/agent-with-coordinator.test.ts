/**
 * End to end with the real coordinator (@shoal/coordinator): two instances of a service report through their
 * agents; an idle service makes the coordinator scale down, it sends `drain` to the victim's agent, the agent
 * drains (its last report says not ready, nothing in flight) and the coordinator removes it through the actuator.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createAgent, type Agent, type DrainResult } from '@shoal/agent';
import { createCoordinator, type Actuator, type Coordinator, type ScaleOptions } from '@shoal/coordinator';

const TOKEN = 'orders-token-0123456789abcdef';

class RecordingActuator implements Actuator {
  readonly type = 'recording';
  readonly calls: Array<{ replicas: number; victims?: readonly string[] }> = [];
  constructor(private count: number) {}
  async getReplicas(): Promise<number> {
    return this.count;
  }
  async scaleTo(replicas: number, options: ScaleOptions = {}): Promise<void> {
    this.calls.push({ replicas, ...(options.victims ? { victims: options.victims } : {}) });
    this.count = replicas;
  }
  watch(): () => void {
    return () => {};
  }
  replicas(): [] {
    return [];
  }
  async close(): Promise<void> {}
}

async function until<T>(fn: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('agent with the real coordinator (end to end)', () => {
  let coordinator: Coordinator | undefined;
  const agents: Agent[] = [];
  const servers: http.Server[] = [];

  afterEach(async () => {
    for (const a of agents.splice(0)) await a.close();
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()));
    }
    await coordinator?.close();
    coordinator = undefined;
  });

  it('reports, gets drained on scale-down, and is removed once drained', async () => {
    const actuator = new RecordingActuator(2);
    coordinator = createCoordinator(
      {
        listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
        syncPeriodMs: 3_600_000,
        services: [
          {
            name: 'orders',
            token: TOKEN,
            minReplicas: 1,
            maxReplicas: 4,
            drainTimeoutMs: 5000,
            policy: {
              // In-flight work, not event-loop utilization: this test process's own ELU depends on the machine.
              targets: [{ metric: 'inFlight', value: 10 }],
              panic: false,
              forecast: false,
              behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
            },
            actuator: { type: 'command', command: 'true' },
          },
        ],
      },
      { registry: new Registry(), actuatorFactory: () => actuator },
    );
    await coordinator.start();

    const drained = new Map<string, DrainResult>();
    for (const id of ['orders-1', 'orders-2']) {
      const server = http.createServer((_req, res) => res.end(id));
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const agent = createAgent({
        service: 'orders',
        port: (server.address() as AddressInfo).port,
        address: '127.0.0.1',
        instanceId: id,
        coordinator: { url: coordinator.urls().grpc, token: TOKEN },
        reportIntervalMs: 100,
        minReportIntervalMs: 100,
        registry: new Registry(),
        onDrained: (r) => void drained.set(id, r),
      });
      agents.push(agent);
      agent.instrumentHttpServer(server);
      await agent.start();
    }
    const orders = () => coordinator!.services().find((s) => s.name === 'orders')!;
    await until(() => orders().instances.filter((i) => i.lastReport && i.connected).length === 2, 'reports from both');
    for (const instance of orders().instances) {
      assert.equal(instance.address, '127.0.0.1');
      assert.equal(instance.lastReport!.ready, true);
      assert.ok(instance.lastReport!.rssBytes > 0);
    }

    const record = await coordinator.tick('orders');
    assert.equal(record?.desiredReplicas, 1, 'an idle service scales down to its minimum');
    const [victim] = await until(() => [...drained.entries()][0], 'the victim to drain');
    const result = drained.get(victim)!;
    assert.match(result.reason, /scale down 2 → 1/, 'the drain carries the coordinator reason');
    assert.deepEqual({ ...result, reason: '' }, { reason: '', timedOut: false, inFlight: 0 });
    assert.equal(drained.size, 1, 'only the victim drained');
    assert.deepEqual(actuator.calls, [{ replicas: 1, victims: [victim] }]);
    assert.deepEqual(record?.drained, { [victim]: 'drained' });
    const survivor = agents.find((a) => a.instanceId !== victim)!;
    assert.equal(survivor.state, 'ready');
    assert.equal(survivor.desiredReplicas ?? 1, 1);
  });
});
