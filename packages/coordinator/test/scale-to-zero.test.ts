import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ManualClock } from '@shoal/core';
import { KubernetesActuator, parseConfig } from '@shoal/coordinator';
import {
  MemoryStateStore,
  ServiceController,
  ServiceWindow,
  createCoordinatorMetrics,
  servicePolicy,
  type ExternalMetricsReading,
  type ServiceControllerOptions,
} from '@shoal/coordinator/internal';
import { RecordingActuator, hello, report } from './support/agent-client.js';
import { FakeKubernetes } from './support/fake-kubernetes.js';
import { waitFor } from '../../../test/kit/index.js';

// minReplicas 0 (issue #20): KEDA's activation threshold and cooldown over an external metric.
function setup(start: number, scaleUpPods = 100) {
  const config = parseConfig({
    insecureDev: true,
    prometheus: { url: 'http://127.0.0.1:9' },
    services: [
      {
        name: 'worker',
        minReplicas: 0,
        maxReplicas: 20,
        idleCooldownMs: 60_000,
        policy: {
          targets: [{ metric: 'backlog', query: 'sum(backlog)', value: 10, activationValue: 5 }],
          panic: false,
          scaleUpHeadroom: 0,
          behavior: {
            scaleUp: {
              stabilizationWindowSeconds: 0,
              policies: [{ type: 'Pods', value: scaleUpPods, periodSeconds: 15 }],
            },
            scaleDown: { stabilizationWindowSeconds: 0, policies: [{ type: 'Percent', value: 100, periodSeconds: 1 }] },
          },
        },
        actuator: { type: 'command', command: 'true' },
      },
    ],
  });
  const service = config.services[0]!;
  const clock = new ManualClock(1_000_000);
  const actuator = new RecordingActuator(start);
  let backlog: number | undefined = 0;
  const controller = new ServiceController({
    service,
    policy: servicePolicy(service),
    window: new ServiceWindow('worker', { reportIntervalMs: 1000, windowMs: 5000, maxSamples: 10, maxInstances: 10 }),
    actuator,
    ingest: { drain: async () => 'drained' as const } as unknown as ServiceControllerOptions['ingest'],
    metrics: createCoordinatorMetrics(new Registry()),
    stateStore: new MemoryStateStore(),
    syncPeriodMs: 5000,
    decisionLogSize: 50,
    dryRun: false,
    id: 'test',
    clock,
    externalMetrics: {
      read: async (): Promise<ExternalMetricsReading> => {
        if (backlog === undefined)
          return { values: {}, problems: ['external metric backlog: cannot reach Prometheus'] };
        return { values: { backlog }, problems: [] };
      },
    },
  });
  return {
    controller,
    clock,
    actuator,
    set: (v: number | undefined) => {
      backlog = v;
    },
  };
}

describe('scale to zero (minReplicas 0)', () => {
  it('holds 1 replica until idle for idleCooldownMs, then goes to 0', async () => {
    const t = setup(2);
    await t.controller.lead(true);
    t.set(0);
    const held = await t.controller.tick();
    assert.equal(t.actuator.count, 1, held!.reasons.join('; '));
    assert.ok(held!.reasons.some((r) => r.startsWith('holding 1 replica: idle 0 s of idleCooldownMs 60 s')));
    t.clock.advance(30_000);
    await t.controller.tick();
    assert.equal(t.actuator.count, 1, 'still within the cooldown');
    t.clock.advance(30_000);
    const zero = await t.controller.tick();
    assert.equal(t.actuator.count, 0, zero!.reasons.join('; '));
    assert.ok(zero!.reasons.some((r) => r.startsWith('idle for 60 s (backlog 0 ≤ activation 5): scaling to zero')));
  });

  it('wakes from 0 only above the activation value, sized to the metric, and never on a missing value', async () => {
    const t = setup(0);
    await t.controller.lead(true);
    t.set(3);
    const quiet = await t.controller.tick();
    assert.equal(t.actuator.count, 0, quiet!.reasons.join('; '));
    assert.ok(
      quiet!.reasons.some((r) => r === 'at zero: not active (backlog 3 ≤ activation 5)'),
      quiet!.reasons.join('; '),
    );
    t.set(undefined);
    t.clock.advance(5000);
    const missing = await t.controller.tick();
    assert.equal(t.actuator.count, 0);
    assert.ok(
      missing!.reasons.includes('external metric backlog: cannot reach Prometheus'),
      missing!.reasons.join('; '),
    );
    t.set(45);
    t.clock.advance(5000);
    const woke = await t.controller.tick();
    assert.equal(t.actuator.count, 5, woke!.reasons.join('; '));
    assert.ok(
      woke!.reasons.some((r) => r === 'activated from zero (backlog 45 > activation 5) → 5'),
      woke!.reasons.join('; '),
    );
  });

  it('ticks held at 0 below the activation value do not spend the scale-up limit of the wake', async () => {
    const t = setup(0, 4); // at most 4 replicas more per 15 s
    await t.controller.lead(true);
    t.set(3); // the policy alone would ask for 1; the gate holds 0
    for (let k = 0; k < 10; k++) {
      await t.controller.tick();
      t.clock.advance(1000);
    }
    assert.equal(t.actuator.count, 0);
    t.set(45);
    const woke = await t.controller.tick();
    assert.equal(t.actuator.count, 4, woke!.reasons.join('; ')); // ceil(45 / 10) = 5, limited to 0 + 4
  });

  it('a value above the activation value keeps the last replica however long it lasts', async () => {
    const t = setup(1);
    await t.controller.lead(true);
    t.set(6); // policy: ceil(6 / 10) = 1
    for (let k = 0; k < 20; k++) {
      await t.controller.tick();
      t.clock.advance(10_000);
    }
    assert.equal(t.actuator.count, 1);
  });
});

describe('scale to zero and back on Kubernetes: idle → 0, woken by client calls', function () {
  // The Kubernetes client loads its models on the first request: slow on a loaded machine.
  this.timeout(60_000);
  it('a Deployment at 0 goes to ceil(waiting / callsPerReplica) through the scale subresource, holds it, and goes back to 0 once idle', async () => {
    const k8s = new FakeKubernetes();
    const url = await k8s.listen();
    k8s.addDeployment('web', 0);
    const config = parseConfig({
      services: [
        {
          name: 'web',
          token: 'web-agent-token-0123456789',
          minReplicas: 0,
          maxReplicas: 8,
          idleCooldownMs: 60_000,
          wake: { token: 'web-wake-token-0123456789' },
          policy: {
            targets: [{ metric: 'inFlight', value: 10 }],
            // No scale-down stabilization: the idle cooldown alone decides when the last replica goes.
            behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
          },
          actuator: { type: 'kubernetes', name: 'web', namespace: 'prod' },
        },
      ],
    });
    const service = config.services[0]!;
    const clock = new ManualClock(1_000_000);
    const actuator = new KubernetesActuator({ name: 'web', namespace: 'prod', kubeConfig: k8s.kubeConfig(url) });
    const window = new ServiceWindow('web', {
      reportIntervalMs: 1000,
      windowMs: 5000,
      maxSamples: 10,
      maxInstances: 10,
    });
    const controller = new ServiceController({
      service,
      policy: servicePolicy(service),
      window,
      actuator,
      ingest: { drain: async () => 'drained' as const } as unknown as ServiceControllerOptions['ingest'],
      metrics: createCoordinatorMetrics(new Registry()),
      stateStore: new MemoryStateStore(),
      syncPeriodMs: 3_600_000,
      decisionLogSize: 50,
      dryRun: false,
      id: 'test',
      clock,
    });
    try {
      controller.start(3_600_000); // ticks only when called (or woken), the periodic one is an hour away
      await controller.lead(true);
      const quiet = await controller.tick();
      assert.equal(quiet!.desiredReplicas, 0, quiet!.reasons.join('; '));
      // 30 calls wait at clients: the loop runs at once (no sync period) and writes spec.replicas 3.
      assert.equal(controller.reportWaiting({ client: 'c1', waiting: 30 }), 30);
      const woke = await waitFor(
        () => controller.decisions.toArray().find((d) => d.currentReplicas === 0 && d.applied),
        { what: 'the wake decision applied', timeoutMs: 30_000 },
      );
      assert.equal(k8s.deployments.get('web')!.replicas, 3, 'spec.replicas 0 → 3');
      k8s.reconcile('web');
      assert.equal(k8s.activePods('web').length, 3);
      assert.ok(
        woke.reasons.includes('woken from zero by client calls (30 calls waiting at clients, 10 per replica) → 3'),
        woke.reasons.join('; '),
      );
      // Served: the count goes to 0; with no report from the pods yet the policy keeps 3 (never read as idle).
      controller.reportWaiting({ client: 'c1', waiting: 0 });
      clock.advance(5_000);
      const after = await controller.tick();
      assert.equal(k8s.deployments.get('web')!.replicas, 3, after!.reasons.join('; '));

      // The pods' agents report: idle (no call in flight). The loop keeps 1 for idleCooldownMs, then writes 0.
      const idle = () => {
        for (const pod of k8s.activePods('web')) {
          if (!window.has(pod.name))
            window.hello(hello('web', pod.name, { startedAtMs: clock.now() - 600_000 }), clock.now());
          window.report(pod.name, report({ inFlight: 0, requests: 0 }), clock.now());
        }
      };
      // Knative-style panic holds the count for its window after the wake, by then the service has been idle for
      // longer than idleCooldownMs: spec.replicas goes straight to 0 (the hold at 1 is tested above).
      const seen: number[] = [];
      for (let k = 0; k < 40 && k8s.deployments.get('web')!.replicas > 0; k++) {
        clock.advance(5_000);
        idle();
        await controller.tick();
        k8s.reconcile('web');
        k8s.finishTerminations();
        if (seen.at(-1) !== k8s.deployments.get('web')!.replicas) seen.push(k8s.deployments.get('web')!.replicas);
      }
      assert.deepEqual(seen, [3, 0], 'spec.replicas 3 → 0 once idle for idleCooldownMs');
      const zero = controller.decisions.toArray().find((d) => d.currentReplicas === 3 && d.desiredReplicas === 0);
      assert.ok(zero?.applied, JSON.stringify(zero));
      assert.ok(
        zero.reasons.some((r) => /^idle for \d+ s \(.*\): scaling to zero$/.test(r)),
        zero.reasons.join('; '),
      );
      assert.ok((zero.atMs - woke.atMs) / 1000 >= 60, 'not before idleCooldownMs');
      k8s.reconcile('web');
      k8s.finishTerminations();
      assert.equal(k8s.activePods('web').length, 0, 'no pod left; the Deployment stays, at 0');
      assert.equal(await actuator.getReplicas(), 0);
    } finally {
      await controller.stop();
      await actuator.close();
      await k8s.close();
    }
  });
});
