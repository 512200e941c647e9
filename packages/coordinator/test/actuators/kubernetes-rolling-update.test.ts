import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ManualClock } from '@shoal/core';
import { KubernetesActuator, POD_DELETION_COST_ANNOTATION, parseConfig } from '@shoal/coordinator';
import {
  MemoryStateStore,
  ServiceController,
  ServiceWindow,
  createCoordinatorMetrics,
  servicePolicy,
  type ServiceControllerOptions,
} from '@shoal/coordinator/internal';
import { hello, report } from '../support/agent-client.js';
import { FakeKubernetes } from '../support/fake-kubernetes.js';
import { recordingLogger } from '../support/recording-logger.js';

/**
 * The control loop over the kubernetes actuator while a Deployment rolls out (`kubectl rollout restart`), against
 * the fake API server's rolling update: agents in every pod (old and surge) report with the pod name as instance id.
 */
describe('control loop + kubernetes actuator during a rolling update', () => {
  let k8s: FakeKubernetes;
  let actuator: KubernetesActuator;
  let logger: ReturnType<typeof recordingLogger>;

  beforeEach(async () => {
    k8s = new FakeKubernetes();
    const url = await k8s.listen();
    logger = recordingLogger();
    actuator = new KubernetesActuator({ name: 'web', namespace: 'prod', kubeConfig: k8s.kubeConfig(url), logger });
  });
  afterEach(async () => {
    await actuator.close();
    await k8s.close();
  });

  function setup() {
    const config = parseConfig({
      insecureDev: true,
      services: [
        {
          name: 'web',
          minReplicas: 2,
          maxReplicas: 20,
          drainTimeoutMs: 1000,
          policy: {
            targets: [{ metric: 'eventLoopUtilization', value: 0.5 }],
            panic: false,
            scaleUpHeadroom: 0,
            forecast: false,
            behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
          },
          actuator: { type: 'kubernetes', name: 'web', namespace: 'prod' },
        },
      ],
    });
    const service = config.services[0]!;
    const clock = new ManualClock(Date.now());
    const window = new ServiceWindow('web', {
      reportIntervalMs: 1000,
      windowMs: 5000,
      maxSamples: 10,
      maxInstances: 100,
    });
    const drains: string[] = [];
    const ingest = {
      drain: async (_s: string, id: string) => {
        drains.push(id);
        return 'drained' as const;
      },
    } as unknown as ServiceControllerOptions['ingest'];
    const controller = new ServiceController({
      service,
      policy: servicePolicy(service),
      window,
      actuator,
      ingest,
      metrics: createCoordinatorMetrics(new Registry()),
      stateStore: new MemoryStateStore(),
      syncPeriodMs: 5000,
      decisionLogSize: 10,
      dryRun: false,
      id: 'test',
      clock,
      logger,
    });
    /** Every active pod's agent reports ready with this event-loop utilization (terminated pods' agents are gone). */
    const fed = new Set<string>();
    const feed = (elu: number) => {
      for (const id of fed) {
        if (k8s.pods.get(id)?.deletionTimestamp === undefined && k8s.pods.has(id)) continue;
        window.remove(id);
        fed.delete(id);
      }
      for (const p of k8s.activePods('web')) {
        fed.add(p.name);
        window.hello(hello('web', p.name, { startedAtMs: clock.now() - 600_000 }), clock.now());
        window.report(p.name, report({ eventLoopUtilization: elu, ready: true }), clock.now());
      }
    };
    return { controller, clock, drains, feed, logger };
  }

  it('keeps spec.replicas through a surge (8, not 10) and drains no healthy pod', async () => {
    // The measurement: 8 pods near the target, then a rollout adds 2 surge pods and the load spreads over 10.
    // Counting status.replicas (10), the actuator decided 10 → 8 and drained two healthy pods.
    k8s.addDeployment('web', 8, { maxSurge: '25%', maxUnavailable: 0 });
    const t = setup();
    await t.controller.lead(true);
    t.feed(0.47);
    const steady = await t.controller.tick();
    assert.deepEqual([steady?.currentReplicas, steady?.desiredReplicas], [8, 8]);

    k8s.rolloutRestart('web');
    k8s.reconcile('web'); // two surge pods; their agents report before the kubelet's readiness probe has passed
    const s = k8s.deployments.get('web')!.status;
    assert.deepEqual([k8s.deployments.get('web')!.replicas, s.replicas], [8, 10], 'spec 8, status 10');
    t.clock.advance(6000); // past the 5 s window: only the new reports count
    t.feed(0.375); // 8 × 0.47 of work over 10 pods: ratio 0.75, beyond the 0.2 scale-down tolerance
    const during = await t.controller.tick();
    assert.deepEqual(
      [during?.currentReplicas, during?.desiredReplicas, during?.error],
      [8, 8, undefined],
      during?.reasons.join('; '),
    );
    assert.deepEqual(t.drains, [], 'no drain directive');
    assert.ok(!k8s.requests.some((r) => r.method === 'PATCH' || r.method === 'PUT'), 'no patch, no scale write');
    assert.equal(k8s.activePods('web').length, 10, 'no pod deleted');
  });

  it('during a rollout, scales down by spec only: victims held with the reason in the decision log and pino', async () => {
    k8s.addDeployment('web', 8, { maxSurge: 2, maxUnavailable: 0 });
    const t = setup();
    await t.controller.lead(true);
    k8s.rolloutRestart('web');
    k8s.reconcile('web'); // two surge pods; their agents report before the kubelet's readiness probe has passed
    t.feed(0.1); // the load really dropped
    const down = await t.controller.tick();
    assert.ok(down!.desiredReplicas < 8 && down!.applied, JSON.stringify(down));
    assert.equal(down!.victims, undefined);
    assert.deepEqual(t.drains, []);
    const held = down!.reasons.find((r) => r.startsWith('victims held'));
    assert.match(held ?? '', /Deployment prod\/web is rolling out \(status\.replicas 10 ≠ spec\.replicas 8/);
    assert.ok(t.logger.records.some((r) => r.msg === 'decision' && (r.fields.reasons as string[]).includes(held!)));
    assert.ok(
      t.logger.records.some((r) => r.msg === 'scale-down victims held' && r.fields.component === 'kubernetes-actuator'),
    );
    assert.equal(k8s.deployments.get('web')!.replicas, down!.desiredReplicas, 'spec written');
    assert.ok(!k8s.requests.some((r) => r.method === 'PATCH'));

    // The rollout completes at the new count; load comes back (scale-up), then eases: now a scale-down drains the
    // policy's victim and marks that pod, and the ReplicaSet deletes it.
    k8s.completeRollout('web');
    t.clock.advance(15_000);
    t.feed(1);
    const up = await t.controller.tick();
    assert.ok(up!.desiredReplicas > down!.desiredReplicas && up!.applied, JSON.stringify(up));
    k8s.reconcile('web');
    k8s.markReady();
    k8s.reconcile('web');
    const count = k8s.activePods('web').length;
    assert.equal(count, up!.desiredReplicas);
    t.clock.advance(15_000);
    t.feed(0.35);
    const after = await t.controller.tick();
    assert.ok(after!.desiredReplicas < count && after!.victims!.length > 0, JSON.stringify(after));
    assert.deepEqual(t.drains, after!.victims);
    for (const id of after!.victims!) {
      assert.equal(k8s.pods.get(id)!.annotations[POD_DELETION_COST_ANNOTATION], '-2147483648');
    }
    k8s.reconcile('web');
    for (const id of after!.victims!) assert.ok(k8s.pods.get(id)!.deletionTimestamp, `${id} is the pod deleted`);
  });
});
