import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ManualClock } from '@shoal/core';
import { parseConfig } from '@shoal/coordinator';
import {
  MemoryStateStore,
  ServiceController,
  ServiceWindow,
  createCoordinatorMetrics,
  servicePolicy,
  type ServiceControllerOptions,
} from '@shoal/coordinator/internal';
import { RecordingActuator, hello, report } from './support/agent-client.js';

function setup(options: { replicas?: number; downWindowS?: number; dryRun?: boolean } = {}) {
  const config = parseConfig({
    insecureDev: true,
    services: [
      {
        name: 'orders',
        minReplicas: 1,
        maxReplicas: 10,
        drainTimeoutMs: 1000,
        policy: {
          targets: [{ metric: 'eventLoopUtilization', value: 0.5 }],
          panic: false,
          scaleUpHeadroom: 0,
          forecast: false,
          behavior: { scaleDown: { stabilizationWindowSeconds: options.downWindowS ?? 0 } },
        },
        actuator: { type: 'command', command: 'true' },
      },
    ],
  });
  const service = config.services[0]!;
  const clock = new ManualClock(1_000_000);
  const window = new ServiceWindow('orders', {
    reportIntervalMs: 1000,
    windowMs: 5000,
    maxSamples: 10,
    maxInstances: 100,
  });
  const actuator = new RecordingActuator(options.replicas ?? 2);
  const drains: string[] = [];
  const ingest = {
    drain: async (_s: string, id: string) => {
      drains.push(id);
      return 'drained' as const;
    },
  } as unknown as ServiceControllerOptions['ingest'];
  const stateStore = new MemoryStateStore();
  const registry = new Registry();
  const controller = new ServiceController({
    service,
    policy: servicePolicy(service),
    window,
    actuator,
    ingest,
    metrics: createCoordinatorMetrics(registry),
    stateStore,
    syncPeriodMs: 5000,
    decisionLogSize: 10,
    dryRun: options.dryRun ?? false,
    id: 'test',
    clock,
  });
  const feed = (elus: number[]) => {
    elus.forEach((elu, i) => {
      window.hello(hello('orders', `o-${i}`, { startedAtMs: clock.now() - 600_000 }), clock.now());
      window.report(`o-${i}`, report({ eventLoopUtilization: elu }), clock.now());
    });
  };
  return { controller, clock, window, actuator, drains, stateStore, registry, feed };
}

describe('ServiceController', () => {
  it('ticks every sync period while leading, and not before', async () => {
    const t = setup();
    t.controller.start();
    await t.clock.advanceAsync(20_000, 1000);
    assert.equal(t.controller.decisions.size, 0, 'no decisions while not leading');
    await t.controller.lead(true);
    t.feed([0.5, 0.5]);
    await t.clock.advanceAsync(15_000, 1000);
    assert.equal(t.controller.decisions.size, 3);
    await t.controller.stop();
  });

  it('scales up, then drains the chosen victims before scaling down', async () => {
    const t = setup({ replicas: 2 });
    await t.controller.lead(true);
    t.feed([1, 1]);
    const up = await t.controller.tick();
    assert.deepEqual([up?.currentReplicas, up?.desiredReplicas, up?.applied], [2, 4, true]);
    t.clock.advance(5000);
    t.feed([0.1, 0.1, 0.1, 0.1]);
    const down = await t.controller.tick();
    assert.ok(down!.desiredReplicas < 4);
    assert.equal(t.drains.length, 4 - down!.desiredReplicas);
    assert.deepEqual(t.actuator.calls.at(-1), { replicas: down!.desiredReplicas, victims: t.drains });
    for (const id of t.drains) assert.equal(t.window.has(id), false, 'victims leave the window');
  });

  it('counts silent instances as missing with the HPA rules (preset hpa: 10 replicas, 5 silent, 5 at 8 in flight of 10 → 10)', async () => {
    const config = parseConfig({
      insecureDev: true,
      services: [
        {
          name: 'orders',
          minReplicas: 1,
          maxReplicas: 20,
          policy: { preset: 'hpa', targets: [{ metric: 'inFlight', value: 10 }] },
          actuator: { type: 'command', command: 'true' },
        },
      ],
    });
    const t = setup({ replicas: 10 });
    t.controller.update(config.services[0]!, servicePolicy(config.services[0]!), false, 5000);
    await t.controller.lead(true);
    for (let k = 0; k < 10; k++) {
      t.window.hello(hello('orders', `o-${k}`, { startedAtMs: t.clock.now() - 600_000 }), t.clock.now());
      t.window.report(`o-${k}`, report({ inFlight: 8 }), t.clock.now());
    }
    // Five stop reporting (and their streams close); the other five keep reporting 8 in flight.
    t.clock.advance(10_000);
    for (let k = 0; k < 5; k++) t.window.report(`o-${k}`, report({ inFlight: 8 }), t.clock.now());
    // Past the scale-down hold of a new leader, so only the engine decides.
    t.clock.advance(400_000);
    for (let k = 0; k < 5; k++) t.window.report(`o-${k}`, report({ inFlight: 8 }), t.clock.now());
    const d = await t.controller.tick();
    assert.equal(d?.desiredReplicas, 10, d?.reasons.join('; '));
    assert.ok(!d!.reasons.some((r) => r.startsWith('holding scale-down')), d!.reasons.join('; '));
  });

  it('holds scale-down for one stabilization window after it starts leading, and keeps no phantom scale event', async () => {
    const t = setup({ replicas: 3, downWindowS: 60 });
    await t.controller.lead(true);
    t.feed([0.1, 0.1, 0.1]);
    const held = await t.controller.tick();
    assert.equal(held?.desiredReplicas, 3);
    assert.ok(
      held!.reasons.some((r) => r.startsWith('holding scale-down: 0 s of fresh data')),
      held!.reasons.join('; '),
    );
    const saved = await t.stateStore.load('orders');
    assert.deepEqual(saved!.policyState.scaleDownEvents, []);
    t.clock.advance(61_000);
    t.feed([0.1, 0.1, 0.1]);
    const after = await t.controller.tick();
    assert.ok(after!.desiredReplicas < 3, after!.reasons.join('; '));
  });

  it('resumes persisted state (and count) when it starts leading', async () => {
    const t = setup({ replicas: 1 });
    const first = setup();
    await first.controller.lead(true);
    first.feed([1, 1]);
    await first.controller.tick();
    const saved = await first.stateStore.load('orders');
    await t.stateStore.save('orders', saved!);
    let assumed: number | undefined;
    t.actuator.assumeReplicas = (n: number) => (assumed = n);
    await t.controller.lead(true);
    assert.equal(assumed, 4);
    assert.equal(t.controller.desiredReplicas, 4);
  });

  it('records actuator failures without throwing and counts them', async () => {
    const t = setup({ replicas: 1 });
    t.actuator.scaleTo = async () => {
      throw new Error('platform down');
    };
    await t.controller.lead(true);
    t.feed([1]);
    const r = await t.controller.tick();
    assert.equal(r?.applied, false);
    assert.equal(r?.error, 'platform down');
    assert.match(await t.registry.metrics(), /shoal_coordinator_actuator_errors_total\{service="orders"\} 1/);
  });

  it('in dry-run decides without actuating', async () => {
    const t = setup({ replicas: 1, dryRun: true });
    await t.controller.lead(true);
    t.feed([1]);
    const r = await t.controller.tick();
    assert.equal(r?.desiredReplicas, 2);
    assert.equal(t.actuator.calls.length, 0);
  });
});
