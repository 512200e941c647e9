import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ManualClock } from '@shoal/core';
import { decide, resolvePolicy } from '@shoal/policy';
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

// Issue #20: a queue depth every replica reads from the same broker (30 messages, target 10 per replica).
function setup() {
  const config = parseConfig({
    insecureDev: true,
    services: [
      {
        name: 'worker',
        minReplicas: 1,
        maxReplicas: 50,
        customMetrics: ['queue_depth'],
        policy: {
          targets: [{ metric: 'queue_depth', type: 'total', value: 10 }],
          panic: false,
          scaleUpHeadroom: 0,
          forecast: false,
          behavior: { scaleUp: { policies: [{ type: 'Percent', value: 10_000, periodSeconds: 15 }] } },
        },
        actuator: { type: 'command', command: 'true' },
      },
    ],
  });
  const service = config.services[0]!;
  const clock = new ManualClock(1_000_000);
  const window = new ServiceWindow('worker', {
    reportIntervalMs: 1000,
    windowMs: 5000,
    maxSamples: 10,
    maxInstances: 100,
  });
  const actuator = new RecordingActuator(3);
  const controller = new ServiceController({
    service,
    policy: servicePolicy(service),
    window,
    actuator,
    ingest: { drain: async () => 'drained' as const } as unknown as ServiceControllerOptions['ingest'],
    metrics: createCoordinatorMetrics(new Registry()),
    stateStore: new MemoryStateStore(),
    syncPeriodMs: 5000,
    decisionLogSize: 10,
    dryRun: false,
    id: 'test',
    clock,
  });
  /** Every running replica reports the broker's depth, 30, as an instance metric or as a service-wide one. */
  const feedAll = (scope: 'instance' | 'service') => {
    for (let i = 0; i < actuator.count; i++) {
      const id = `w-${i}`;
      if (!window.has(id)) window.hello(hello('worker', id, { startedAtMs: clock.now() - 600_000 }), clock.now());
      window.report(
        id,
        report(scope === 'service' ? { serviceMetrics: { queue_depth: 30 } } : { custom: { queue_depth: 30 } }),
        clock.now(),
      );
    }
  };
  return { controller, clock, window, actuator, feedAll };
}

async function run(scope: 'instance' | 'service', ticks: number): Promise<number[]> {
  const t = setup();
  await t.controller.lead(true);
  const counts = [t.actuator.count];
  for (let k = 0; k < ticks; k++) {
    t.feedAll(scope);
    const d = await t.controller.tick();
    assert.equal(d?.error, undefined, d?.error);
    counts.push(t.actuator.count);
    t.clock.advance(20_000);
  }
  await t.controller.stop();
  return counts;
}

describe('service-level metrics (issue #20)', () => {
  it('a shared queue depth reported as an instance metric is summed by a total target and runs away', async () => {
    // What the issue saw: 3 replicas × 30 = 90 / 10 → 9, then 9 × 30 → 27, then 27 × 30 → 81, capped at 50.
    assert.deepEqual(await run('instance', 3), [3, 9, 27, 50]);
  });

  it('declared service-wide, it is taken once per service and holds 3 replicas', async () => {
    assert.deepEqual(await run('service', 3), [3, 3, 3, 3]);
  });

  it('takes the freshest value of a service metric, never a sum, and forgets a stale one', () => {
    const window = new ServiceWindow('worker', {
      reportIntervalMs: 1000,
      windowMs: 5000,
      maxSamples: 10,
      maxInstances: 10,
    });
    window.hello(hello('worker', 'a'), 0);
    window.hello(hello('worker', 'b'), 0);
    window.report('a', report({ serviceMetrics: { backlog: 30 }, custom: { sessions: 4 } }), 1000);
    window.report('b', report({ serviceMetrics: { backlog: 42 }, custom: { sessions: 6 } }), 1500);
    window.report('a', report({ seq: 2, custom: { sessions: 4 } }), 2000); // no backlog in this report
    const o = window.observe(2000, 2);
    assert.deepEqual(o.metrics, { backlog: 42 }, 'the value of the most recent report carrying it');
    assert.deepEqual(
      o.instances.map((i) => i.metrics.backlog),
      [undefined, undefined],
      'never an instance metric',
    );
    // Three report intervals without a reading: missing, as an instance metric would be.
    assert.equal(window.observe(1500 + 3001, 2).metrics, undefined);
  });

  it('a total target over an instance metric keeps its meaning: the sum over instances', () => {
    const window = new ServiceWindow('worker', {
      reportIntervalMs: 1000,
      windowMs: 5000,
      maxSamples: 10,
      maxInstances: 10,
    });
    window.hello(hello('worker', 'a'), 0);
    window.hello(hello('worker', 'b'), 0);
    window.report('a', report({ custom: { in_queue: 12 }, serviceMetrics: { backlog: 5 } }), 1000);
    window.report('b', report({ custom: { in_queue: 18 } }), 1000);
    const policy = resolvePolicy({
      minReplicas: 1,
      maxReplicas: 50,
      targets: [{ metric: 'in_queue', type: 'total', value: 10 }],
      panic: false,
      scaleUpHeadroom: 0,
    });
    const d = decide(policy, window.observe(1000, 2), undefined);
    assert.equal(d.desiredReplicas, 3, d.reasons.join('; ')); // (12 + 18) / 10
  });
});
