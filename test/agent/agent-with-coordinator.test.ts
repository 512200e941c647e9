/**
 * End to end with the real coordinator (@shoal/coordinator), over each report transport: two instances of a
 * service report through their agents (gRPC stream, or HTTP/JSON `POST /v1/report` with a bearer token); an idle
 * service makes the coordinator scale down, it sends `drain` to the victim's agent (on the stream, or in the
 * answer to the victim's next POST), the agent drains (its last report says not ready, nothing in flight) and the
 * coordinator removes it through the actuator. Lives outside packages/agent because @shoal/agent does not depend
 * on @shoal/coordinator.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createAgent, type Agent, type AgentOptions, type DrainResult } from '@shoal/agent';
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

  async function startCoordinator(actuator: Actuator): Promise<Coordinator> {
    const c = createCoordinator(
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
    await c.start();
    return c;
  }

  async function startInstance(
    id: string,
    url: string,
    token: string,
    onDrained: (r: DrainResult) => void,
    extra: Partial<AgentOptions> = {},
  ) {
    const server = http.createServer((_req, res) => res.end(id));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const agent = createAgent({
      service: 'orders',
      port: (server.address() as AddressInfo).port,
      address: '127.0.0.1',
      instanceId: id,
      coordinator: { url, token, backoff: { baseMs: 20, capMs: 100 } },
      reportIntervalMs: 100,
      minReportIntervalMs: 100,
      onDrained,
      ...extra,
    });
    agents.push(agent);
    agent.instrumentHttpServer(server);
    await agent.start();
    return agent;
  }

  it('over gRPC: reports, gets drained on scale-down, and is removed once drained', async () => {
    const actuator = new RecordingActuator(2);
    coordinator = await startCoordinator(actuator);
    const drained = new Map<string, DrainResult>();
    for (const id of ['orders-1', 'orders-2']) {
      await startInstance(id, coordinator.urls().grpc, TOKEN, (r) => void drained.set(id, r), {
        registry: new Registry(),
      });
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

  it('over HTTP/JSON: reports, gets drained on scale-down through the POST answer, and is removed once drained', async () => {
    const actuator = new RecordingActuator(2);
    coordinator = await startCoordinator(actuator);
    const url = coordinator.urls().http;
    assert.match(url, /^http:\/\//);
    const drained = new Map<string, DrainResult>();
    for (const id of ['orders-1', 'orders-2']) await startInstance(id, url, TOKEN, (r) => void drained.set(id, r));
    const orders = () => coordinator!.services().find((s) => s.name === 'orders')!;
    await until(() => orders().instances.filter((i) => i.lastReport?.ready).length === 2, 'reports from both');
    for (const instance of orders().instances) {
      assert.equal(instance.address, '127.0.0.1');
      assert.ok(instance.lastReport!.rssBytes > 0);
    }
    // The coordinator records a report before it answers: the agents see the answer a moment later.
    await until(() => agents.every((a) => a.coordinatorStatus()?.connected), 'both agents connected');

    const record = await coordinator.tick('orders');
    assert.equal(record?.desiredReplicas, 1, 'an idle service scales down to its minimum');
    const [victim] = await until(() => [...drained.entries()][0], 'the victim to drain');
    const result = drained.get(victim)!;
    assert.match(result.reason, /scale down 2 → 1/, 'the drain carries the coordinator reason');
    assert.deepEqual({ ...result, reason: '' }, { reason: '', timedOut: false, inFlight: 0 });
    assert.equal(drained.size, 1, 'only the victim drained');
    assert.deepEqual(actuator.calls, [{ replicas: 1, victims: [victim] }]);
    assert.deepEqual(record?.drained, { [victim]: 'drained' });
    assert.equal(agents.find((a) => a.instanceId !== victim)!.state, 'ready');
  });

  it('over HTTP/JSON: is refused with a wrong token (401): the agent keeps serving and the coordinator records nothing', async () => {
    coordinator = await startCoordinator(new RecordingActuator(1));
    const agent = await startInstance('orders-9', coordinator.urls().http, 'wrong-token-0123456789', () => {});
    await until(
      () => (agent.coordinatorStatus()?.buffered ?? 0) >= 1 && agent.coordinatorStatus()!.sent === 0,
      'a refusal',
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(agent.coordinatorStatus()?.sent, 0);
    assert.equal(agent.coordinatorStatus()?.connected, false);
    assert.equal(agent.state, 'ready');
    const instances = coordinator.services().find((s) => s.name === 'orders')!.instances;
    assert.equal(instances.filter((i) => i.id === 'orders-9').length, 0, 'no report from a refused agent');
  });
});
