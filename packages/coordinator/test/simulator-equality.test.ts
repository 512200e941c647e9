import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ManualClock } from '@shoal/core';
import { parseConfig } from '@shoal/coordinator';
import {
  MemoryStateStore,
  ServiceController,
  ServiceWindow,
  createCoordinatorMetrics,
  type ServiceControllerOptions,
} from '@shoal/coordinator/internal';
import { resolvePolicy, serviceWindowOptions, simulate, syntheticTrace, type PolicyInput } from '@shoal/policy';
import type { Hello, LoadReport } from '@shoal/protocol';
import { RecordingActuator } from './support/agent-client.js';

const POLICY: PolicyInput = {
  minReplicas: 1,
  maxReplicas: 30,
  targets: [
    { metric: 'eventLoopUtilization', value: 0.7 },
    { metric: 'rps', value: 56 },
  ],
  slo: { thresholdMs: 250 },
};

interface Delivered {
  atMs: number;
  hello: Hello | undefined;
  id: string;
  report: LoadReport;
}

interface Step {
  atMs: number;
  current: number;
  desired: number;
  victims: string[];
}

/**
 * Issue 19's equality test: the simulator and the real coordinator loop (ServiceController on a ManualClock, with
 * the simulated agents' reports replayed into its window at the instants the simulator delivered them) make the
 * same decisions, one for one: same current count, same desired count, same victims.
 */
describe('the simulator and the coordinator decide alike', () => {
  it('gives the same decisions on the same trace and seed (scale-up, panic, the 300 s hold, scale-down)', async () => {
    const trace = syntheticTrace('wave', 720, 1, (t) =>
      t < 300 ? 300 + 250 * Math.sin(t / 9) + (t > 60 ? 600 : 0) : 120 + 60 * Math.sin(t / 7),
    );
    const policy = resolvePolicy(POLICY);
    const startAtMs = Date.UTC(2026, 0, 5);
    const reports: Delivered[] = [];
    const simulated: Step[] = [];
    const result = simulate({
      trace,
      policy,
      model: { seed: 7, syncPeriodMs: 5000, coldStartMs: 10_000, startAtMs },
      onReport: (atMs, hello, id, report) => reports.push({ atMs, hello, id, report: structuredClone(report) }),
      onDecision: (t, _decision, observation, step) =>
        simulated.push({
          atMs: observation.now,
          current: step.currentReplicas,
          desired: step.desiredReplicas,
          victims: step.victims ?? [],
        }),
    });
    assert.ok(result.summary.scaleUps >= 1 && result.summary.scaleDowns >= 1, JSON.stringify(result.events));

    // The real control loop, fed the same reports.
    const config = parseConfig({
      insecureDev: true,
      services: [
        {
          name: 'sim',
          minReplicas: 1,
          maxReplicas: 30,
          policy: { targets: POLICY.targets, slo: POLICY.slo },
          actuator: { type: 'command', command: 'true' },
        },
      ],
    });
    const clock = new ManualClock(startAtMs);
    const window = new ServiceWindow('sim', {
      ...serviceWindowOptions({ reportIntervalMs: 1000, syncPeriodMs: 5000, windowSize: 1000, maxInstances: 1000 }),
      requests: { cpu: 1 },
    });
    const actuator = new RecordingActuator(simulated[0]!.current);
    const ingest = { drain: async () => 'drained' as const } as unknown as ServiceControllerOptions['ingest'];
    const controller = new ServiceController({
      service: config.services[0]!,
      policy,
      window,
      actuator,
      ingest,
      metrics: createCoordinatorMetrics(new Registry()),
      stateStore: new MemoryStateStore(),
      syncPeriodMs: 5000,
      decisionLogSize: 1000,
      dryRun: false,
      id: 'equality',
      clock,
    });
    await controller.lead(true);
    const actual: Step[] = [];
    let next = 0;
    for (const expected of simulated) {
      while (next < reports.length && reports[next]!.atMs <= expected.atMs) {
        const r = reports[next++]!;
        clock.advance(r.atMs - clock.now());
        if (r.hello) {
          window.hello(r.hello, r.atMs);
          window.connected(r.id, 1);
        }
        window.report(r.id, r.report, r.atMs);
      }
      clock.advance(expected.atMs - clock.now());
      const record = await controller.tick();
      assert.ok(record, 'the controller decided');
      actual.push({
        atMs: record.atMs,
        current: record.currentReplicas,
        desired: record.desiredReplicas,
        victims: record.victims ?? [],
      });
      // A replica the simulator started joins the actuator's count when the decision applies (done by tick()).
    }
    await controller.stop();
    assert.equal(actual.length, simulated.length);
    for (let k = 0; k < simulated.length; k++) {
      assert.deepEqual(actual[k], simulated[k], `decision ${k} at ${(simulated[k]!.atMs - startAtMs) / 1000} s`);
    }
    // The run held its scale-down for the 300 s after taking over, as a fresh coordinator does.
    const firstDown = simulated.find((s) => s.desired < s.current);
    assert.ok(firstDown && firstDown.atMs - startAtMs >= 300_000, JSON.stringify(firstDown));
  });
});
