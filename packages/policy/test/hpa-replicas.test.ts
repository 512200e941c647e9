// Parity with Kubernetes' replica calculator. Every case mirrors a case of kubernetes/kubernetes
// pkg/controller/podautoscaler/replica_calculator_test.go (named after it), with its fixtures translated:
// per-pod levels in milli-units, CPU requests in cores, the test's CPU initialization period (2 min),
// initial readiness delay (10 s) and metric window (1 min); "hot" pods started 1 min ago, "cool" ones
// 3 min ago; readiness transitions and sample times are Go's zero time (0 here).
import assert from 'node:assert/strict';
import { hasErrorCode } from '@shoal/core';
import { computeHpaReplicas } from '@shoal/policy';
import type { HpaInput, HpaInstance, HpaMetric, ToleranceInput } from '@shoal/policy';

const NOW = 1_700_000_000_000;
const HOT = NOW - 60_000;
const COOL = NOW - 180_000;

interface Fixture {
  current: number;
  pods?: number;
  levels: number[];
  requests?: number[];
  ready?: boolean[];
  phase?: Array<'running' | 'pending' | 'failed'>;
  deleting?: boolean[];
  start?: number[];
}

function instances(f: Fixture, valueField: 'usage' | 'value' | 'none'): HpaInstance[] {
  const n = Math.max(f.pods ?? f.current, f.phase?.length ?? 0, f.deleting?.length ?? 0);
  const out: HpaInstance[] = [];
  for (let i = 0; i < n; i++) {
    const inst: HpaInstance = { id: `test-pod-${i}`, readySince: 0, sampledAt: 0 };
    if (f.ready) inst.ready = f.ready[i] ?? true;
    if (f.phase) inst.phase = f.phase[i] ?? 'running';
    if (f.deleting) inst.deleting = f.deleting[i] ?? false;
    if (f.start) inst.startedAt = f.start[i];
    const level = f.levels[i];
    if (level !== undefined && valueField !== 'none') inst[valueField] = level / 1000;
    const request = f.requests?.[i];
    if (request !== undefined) inst.request = request;
    out.push(inst);
  }
  return out;
}

function input(
  metric: HpaMetric,
  f: Fixture,
  valueField: 'usage' | 'value' | 'none',
  tolerance?: ToleranceInput,
): HpaInput {
  return {
    currentReplicas: f.current,
    metric,
    instances: instances(f, valueField),
    now: NOW,
    cpuInitializationPeriodMs: 120_000,
    initialReadinessDelayMs: 10_000,
    metricWindowMs: 60_000,
    ...(tolerance !== undefined ? { tolerance } : {}),
  };
}

const ones = (n: number): number[] => new Array<number>(n).fill(1);
const cpu = (averageUtilization: number): HpaMetric => ({
  type: 'resource',
  name: 'cpu',
  target: { averageUtilization },
});

interface ResourceCase {
  name: string;
  f: Fixture;
  target: number;
  replicas: number;
  utilization: number;
  tolerance?: ToleranceInput;
}

const resourceCases: ResourceCase[] = [
  {
    name: 'scale up',
    f: { current: 3, levels: [300, 500, 700], requests: ones(3) },
    target: 30,
    replicas: 5,
    utilization: 50,
  },
  {
    name: 'scale up: unready pod scales less',
    f: { current: 3, levels: [300, 500, 700], requests: ones(3), ready: [false, true, true] },
    target: 30,
    replicas: 4,
    utilization: 60,
  },
  {
    name: 'scale up: hot-CPU pod scales less',
    f: { current: 3, levels: [300, 500, 700], requests: ones(3), start: [HOT, COOL, COOL] },
    target: 30,
    replicas: 4,
    utilization: 60,
  },
  {
    name: 'no scale: unready pods ignored',
    f: { current: 3, levels: [400, 500, 700], requests: ones(3), ready: [true, false, false] },
    target: 30,
    replicas: 3,
    utilization: 40,
  },
  {
    name: 'no scale: hot-CPU pods ignored',
    f: { current: 3, levels: [400, 500, 700], requests: ones(3), ready: [true, false, false], start: [COOL, HOT, HOT] },
    target: 30,
    replicas: 3,
    utilization: 40,
  },
  {
    name: 'scale up: failed pods ignored',
    f: {
      current: 2,
      levels: [500, 700],
      requests: ones(4),
      ready: [true, true, false, false],
      phase: ['running', 'running', 'failed', 'failed'],
    },
    target: 30,
    replicas: 4,
    utilization: 60,
  },
  {
    name: 'scale up: pods being deleted are ignored',
    f: {
      current: 2,
      levels: [500, 700],
      requests: ones(4),
      ready: [true, true, false, false],
      deleting: [false, false, true, true],
    },
    target: 30,
    replicas: 4,
    utilization: 60,
  },
  {
    name: 'scale down',
    f: { current: 5, levels: [100, 300, 500, 250, 250], requests: ones(5) },
    target: 50,
    replicas: 3,
    utilization: 28,
  },
  {
    name: 'scale down: exclude unready pods',
    f: { current: 5, levels: [100, 300, 500, 250, 250], requests: ones(5), ready: [true, true, true, false, false] },
    target: 50,
    replicas: 2,
    utilization: 30,
  },
  {
    name: 'scale down: exclude unscheduled pods',
    f: {
      current: 5,
      levels: [100],
      requests: ones(5),
      ready: [true, false, false, false, false],
      phase: ['running', 'pending', 'pending', 'pending', 'pending'],
    },
    target: 50,
    replicas: 1,
    utilization: 10,
  },
  {
    name: 'scale down: ignore hot-CPU pods',
    f: { current: 5, levels: [100, 300, 500, 250, 250], requests: ones(5), start: [COOL, COOL, COOL, HOT, HOT] },
    target: 50,
    replicas: 2,
    utilization: 30,
  },
  {
    name: 'scale down: failed pods ignored',
    f: {
      current: 5,
      levels: [100, 300, 500, 250, 250],
      requests: ones(7),
      ready: [true, true, true, true, true, false, false],
      phase: ['running', 'running', 'running', 'running', 'running', 'failed', 'failed'],
    },
    target: 50,
    replicas: 3,
    utilization: 28,
  },
  {
    name: 'scale down: pods being deleted are ignored',
    f: {
      current: 5,
      levels: [100, 300, 500, 250, 250],
      requests: ones(7),
      ready: [true, true, true, true, true, false, false],
      deleting: [false, false, false, false, false, true, true],
    },
    target: 50,
    replicas: 3,
    utilization: 28,
  },
  {
    name: 'TestReplicaCalcTolerance',
    f: { current: 3, levels: [1010, 1030, 1020], requests: [0.9, 1.0, 1.1] },
    target: 100,
    replicas: 3,
    utilization: 102,
  },
  {
    name: 'configurable tolerance: outside of a 0% tolerance',
    f: { current: 3, levels: [909, 1010, 1111], requests: [0.9, 1.0, 1.1] },
    target: 100,
    replicas: 4,
    utilization: 101,
    tolerance: 0,
  },
  {
    name: 'configurable tolerance: within a 200% scale-up tolerance',
    f: { current: 3, levels: [1890, 1910, 1900], requests: [0.9, 1.0, 1.1] },
    target: 100,
    replicas: 3,
    utilization: 190,
    tolerance: { down: 0.1, up: 2 },
  },
  {
    name: 'configurable tolerance: outside 8% scale-up tolerance (and superfluous scale-down tolerance)',
    f: { current: 3, levels: [1100, 1080, 1090], requests: [0.9, 1.0, 1.1] },
    target: 100,
    replicas: 4,
    utilization: 109,
    tolerance: { down: 2, up: 0.08 },
  },
  {
    name: 'configurable tolerance: within a 36% scale-down tolerance',
    f: { current: 3, levels: [660, 640, 650], requests: [0.9, 1.0, 1.1] },
    target: 100,
    replicas: 3,
    utilization: 65,
    tolerance: { down: 0.36, up: 0.1 },
  },
  {
    name: 'configurable tolerance: outside a 34% scale-down tolerance',
    f: { current: 3, levels: [660, 640, 650], requests: [0.9, 1.0, 1.1] },
    target: 100,
    replicas: 2,
    utilization: 65,
    tolerance: { down: 0.34, up: 0.1 },
  },
  {
    name: 'TestReplicaCalcMissingMetrics (missing count as 100% on scale-down)',
    f: { current: 4, levels: [400, 95], requests: ones(4) },
    target: 100,
    replicas: 3,
    utilization: 24,
  },
  {
    name: 'TestReplicaCalcMissingMetricsNoChangeEq',
    f: { current: 2, levels: [1000], requests: ones(2) },
    target: 100,
    replicas: 2,
    utilization: 100,
  },
  {
    name: 'TestReplicaCalcMissingMetricsNoChangeGt (missing count as 0 on scale-up)',
    f: { current: 2, levels: [1900], requests: ones(2) },
    target: 100,
    replicas: 2,
    utilization: 190,
  },
  {
    name: 'TestReplicaCalcMissingMetricsNoChangeLt',
    f: { current: 2, levels: [600], requests: ones(2) },
    target: 100,
    replicas: 2,
    utilization: 60,
  },
  {
    name: 'TestReplicaCalcMissingMetricsUnreadyChange',
    f: { current: 3, levels: [100, 450], requests: ones(3), ready: [false, true, true] },
    target: 50,
    replicas: 3,
    utilization: 45,
  },
  {
    name: 'TestReplicaCalcMissingMetricsHotCpuNoChange',
    f: { current: 3, levels: [100, 450], requests: ones(3), start: [HOT, COOL, COOL] },
    target: 50,
    replicas: 3,
    utilization: 45,
  },
  {
    name: 'TestReplicaCalcMissingMetricsUnreadyScaleUp',
    f: { current: 3, levels: [100, 2000], requests: ones(3), ready: [false, true, true] },
    target: 50,
    replicas: 4,
    utilization: 200,
  },
  {
    name: 'TestReplicaCalcMissingMetricsHotCpuScaleUp',
    f: { current: 3, levels: [100, 2000], requests: ones(3), ready: [false, true, true], start: [HOT, COOL, COOL] },
    target: 50,
    replicas: 4,
    utilization: 200,
  },
  {
    name: 'TestReplicaCalcMissingMetricsUnreadyScaleDown',
    f: { current: 4, levels: [100, 100, 100], requests: ones(4), ready: [false, true, true, true] },
    target: 50,
    replicas: 3,
    utilization: 10,
  },
  {
    name: 'TestReplicaCalcMissingMetricsScaleDownTargetOver100',
    f: { current: 4, levels: [200, 100, 100], requests: [1, 1, 2, 2], ready: [false, true, true, true] },
    target: 300,
    replicas: 2,
    utilization: 6,
  },
  {
    name: 'TestReplicaCalcDuringRollingUpdateWithMaxSurge (no growth during a surge)',
    f: { current: 2, pods: 3, levels: [100, 100], requests: ones(3) },
    target: 50,
    replicas: 2,
    utilization: 10,
  },
  {
    name: 'TestReplicaCalcComputedToleranceAlgImplementation: just outside the tolerance',
    f: {
      current: 10,
      levels: new Array<number>(10).fill(150),
      requests: [0.4, 0.2, 0.31, 0.29, 0.302, 0.298, 0.301, 0.299, 0.3, 0.3],
    },
    target: 56,
    replicas: 9,
    utilization: 50,
  },
  {
    name: 'TestReplicaCalcComputedToleranceAlgImplementation: just inside the tolerance',
    f: {
      current: 10,
      levels: new Array<number>(10).fill(150),
      requests: [0.4, 0.2, 0.31, 0.29, 0.302, 0.298, 0.301, 0.299, 0.3, 0.3],
    },
    target: 55,
    replicas: 10,
    utilization: 50,
  },
];

interface PlainCase {
  name: string;
  f: Fixture;
  target: number;
  replicas: number;
  usage: number;
  tolerance?: ToleranceInput;
}

const podsCases: PlainCase[] = [
  {
    name: 'TestReplicaCalcScaleUpCM',
    f: { current: 3, levels: [20000, 10000, 30000] },
    target: 15,
    replicas: 4,
    usage: 20,
  },
  {
    name: 'TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale (unready pods count for non-CPU metrics)',
    f: { current: 3, levels: [50000, 10000, 30000], ready: [true, true, false], start: [COOL, COOL, HOT] },
    target: 15,
    replicas: 6,
    usage: 30,
  },
  {
    name: 'TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown',
    f: { current: 3, levels: [50000, 15000, 30000], ready: [false, true, false], start: [HOT, COOL, HOT] },
    target: 15,
    replicas: 7,
    usage: 31.666,
  },
  {
    name: 'TestReplicaCalcScaleDownCM',
    f: { current: 5, levels: [12000, 12000, 12000, 12000, 12000] },
    target: 20,
    replicas: 3,
    usage: 12,
  },
  {
    name: 'TestReplicaCalcToleranceCM',
    f: { current: 3, levels: [20000, 21000, 21000] },
    target: 20,
    replicas: 3,
    usage: 20.666,
  },
  {
    name: 'TestReplicaCalcConfigurableToleranceCM',
    f: { current: 3, levels: [20000, 21000, 21000] },
    target: 20,
    replicas: 4,
    usage: 20.666,
    tolerance: { down: 0.1, up: 0.01 },
  },
  {
    name: 'TestPlainMetricReplicaCalcMissingMetricsNoChangeEq',
    f: { current: 5, levels: [20000, 19000, 21000] },
    target: 20,
    replicas: 5,
    usage: 20,
  },
  {
    name: 'TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM',
    f: { current: 2, pods: 3, levels: [10000, 10000] },
    target: 17,
    replicas: 2,
    usage: 10,
  },
];

interface ObjectCase {
  name: string;
  type: 'object' | 'external';
  current: number;
  value: number;
  target: { value: number } | { averageValue: number };
  ready?: boolean[];
  replicas: number;
  tolerance?: ToleranceInput;
}

const objectCases: ObjectCase[] = [
  { name: 'TestReplicaCalcScaleUpCMObject', type: 'object', current: 3, value: 20, target: { value: 15 }, replicas: 4 },
  {
    name: 'TestReplicaCalcScaleUpCMPerPodObject',
    type: 'object',
    current: 3,
    value: 20,
    target: { averageValue: 5 },
    replicas: 4,
  },
  {
    name: 'TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods',
    type: 'object',
    current: 3,
    value: 50,
    target: { value: 10 },
    ready: [false, true, false],
    replicas: 5,
  },
  {
    name: 'TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods',
    type: 'external',
    current: 3,
    value: 8.6,
    target: { value: 4.4 },
    ready: [false, true, false],
    replicas: 2,
  },
  {
    name: 'TestReplicaCalcScaleUpPerPodCMExternal',
    type: 'external',
    current: 3,
    value: 8.6,
    target: { averageValue: 2.15 },
    replicas: 4,
  },
  {
    name: 'TestReplicaCalcScaleDownCMObject',
    type: 'object',
    current: 5,
    value: 12,
    target: { value: 20 },
    replicas: 3,
  },
  {
    name: 'TestReplicaCalcScaleDownPerPodCMObject',
    type: 'object',
    current: 5,
    value: 6,
    target: { averageValue: 2 },
    replicas: 3,
  },
  {
    name: 'TestReplicaCalcScaleDownCMExternal',
    type: 'external',
    current: 5,
    value: 8.6,
    target: { value: 14.334 },
    replicas: 3,
  },
  {
    name: 'TestReplicaCalcScaleDownPerPodCMExternal',
    type: 'external',
    current: 5,
    value: 8.6,
    target: { averageValue: 2.867 },
    replicas: 3,
  },
  {
    name: 'TestReplicaCalcToleranceCMObject',
    type: 'object',
    current: 3,
    value: 20.666,
    target: { value: 20 },
    replicas: 3,
  },
  {
    name: 'TestReplicaCalcTolerancePerPodCMObject',
    type: 'object',
    current: 4,
    value: 20.166,
    target: { averageValue: 5 },
    replicas: 4,
  },
  {
    name: 'TestReplicaCalcToleranceCMExternal',
    type: 'external',
    current: 3,
    value: 8.6,
    target: { value: 8.888 },
    replicas: 3,
  },
  {
    name: 'TestReplicaCalcTolerancePerPodCMExternal',
    type: 'external',
    current: 3,
    value: 8.6,
    target: { averageValue: 2.9 },
    replicas: 3,
  },
  {
    name: 'TestReplicaCalcConfigurableToleranceCMObject',
    type: 'object',
    current: 3,
    value: 20.666,
    target: { value: 20 },
    replicas: 4,
    tolerance: { down: 0.1, up: 0.01 },
  },
  {
    name: 'TestReplicaCalcConfigurableTolerancePerPodCMObject',
    type: 'object',
    current: 4,
    value: 20.208,
    target: { averageValue: 5 },
    replicas: 5,
    tolerance: { down: 0.1, up: 0.01 },
  },
  {
    name: 'TestReplicaCalcConfigurableToleranceCMExternal',
    type: 'external',
    current: 3,
    value: 8.9,
    target: { value: 8.8 },
    replicas: 4,
    tolerance: { down: 0.1, up: 0.01 },
  },
  {
    name: 'TestReplicaCalcConfigurableTolerancePerPodCMExternal',
    type: 'external',
    current: 3,
    value: 8.6,
    target: { averageValue: 2.8 },
    replicas: 4,
    tolerance: { down: 0.1, up: 0.01 },
  },
  {
    name: 'scale from zero (external value target): ceil(ratio)',
    type: 'external',
    current: 0,
    value: 8.6,
    target: { value: 4.4 },
    replicas: 2,
  },
];

describe('computeHpaReplicas (Kubernetes replica calculator parity)', () => {
  describe('resource utilization', () => {
    for (const c of resourceCases) {
      it(c.name, () => {
        const r = computeHpaReplicas(input(cpu(c.target), c.f, 'usage', c.tolerance));
        assert.equal(r.replicas, c.replicas);
        assert.equal(r.utilization, c.utilization);
      });
    }

    it('fails like Kubernetes when no instance has a metric', () => {
      assert.throws(
        () => computeHpaReplicas(input(cpu(100), { current: 4, levels: [], requests: ones(3) }, 'usage')),
        (err: unknown) => hasErrorCode(err, 'SHOAL_ERR_POLICY_NO_METRICS'),
      );
    });

    it('fails like Kubernetes when an instance has no request', () => {
      assert.throws(
        () => computeHpaReplicas(input(cpu(100), { current: 1, levels: [200], requests: [] }, 'usage')),
        (err: unknown) =>
          hasErrorCode(err, 'SHOAL_ERR_POLICY_MISSING_REQUEST') && /missing request for cpu/.test(String(err)),
      );
    });

    it('applies the CPU readiness rules only to cpu (memory counts unready instances)', () => {
      const f: Fixture = { current: 3, levels: [400, 500, 700], requests: ones(3), ready: [true, false, false] };
      const memory = computeHpaReplicas(
        input({ type: 'resource', name: 'memory', target: { averageUtilization: 30 } }, f, 'usage'),
      );
      // 1600/3000 = 53 % over all three → ceil(53/30 × 3) = 6, where cpu stays at 3.
      assert.equal(memory.replicas, 6);
      assert.equal(memory.utilization, 53);
    });

    it('counts a ready instance whose sample covers a full window after the transition, during the CPU initialization period', () => {
      const base = { current: 1, levels: [900], requests: [1] };
      const fresh = input(cpu(30), base, 'usage');
      (fresh.instances[0] as HpaInstance).startedAt = NOW - 60_000;
      (fresh.instances[0] as HpaInstance).readySince = NOW - 30_000;
      (fresh.instances[0] as HpaInstance).sampledAt = NOW;
      fresh.metricWindowMs = 30_000;
      assert.equal(computeHpaReplicas(fresh).replicas, 3);
      // A window of 60 s is not yet covered: the sample is ignored, so there is no metric at all.
      fresh.metricWindowMs = 60_000;
      assert.throws(
        () => computeHpaReplicas(fresh),
        (err: unknown) => hasErrorCode(err, 'SHOAL_ERR_POLICY_NO_METRICS'),
      );
    });
  });

  describe('pods metrics (average value)', () => {
    for (const c of podsCases) {
      it(c.name, () => {
        const r = computeHpaReplicas(
          input({ type: 'pods', name: 'qps', target: { averageValue: c.target } }, c.f, 'value', c.tolerance),
        );
        assert.equal(r.replicas, c.replicas);
        assert.equal(r.usage, c.usage);
      });
    }
  });

  describe('object and external metrics', () => {
    for (const c of objectCases) {
      it(c.name, () => {
        const f: Fixture = { current: c.current, levels: [], ...(c.ready ? { ready: c.ready } : {}) };
        const r = computeHpaReplicas(
          input({ type: c.type, name: 'qps', value: c.value, target: c.target } as HpaMetric, f, 'none', c.tolerance),
        );
        assert.equal(r.replicas, c.replicas);
      });
    }

    it('sums the series of an external metric', () => {
      const r = computeHpaReplicas(
        input(
          { type: 'external', value: [4, 4.6], target: { averageValue: 2.15 } },
          { current: 3, levels: [] },
          'none',
        ),
      );
      assert.equal(r.replicas, 4);
    });
  });

  describe('input validation', () => {
    const ok = input(cpu(50), { current: 1, levels: [100], requests: [1] }, 'usage');
    const cases: Array<[string, Partial<HpaInput> | Record<string, unknown>, RegExp]> = [
      ['negative currentReplicas', { currentReplicas: -1 }, /currentReplicas must be an integer >= 0, got -1/],
      ['unknown metric type', { metric: { type: 'bogus', target: { value: 1 } } }, /metric.type must be one of/],
      [
        'a zero target',
        { metric: { type: 'pods', target: { averageValue: 0 } } },
        /metric.target.averageValue must be > 0, got 0/,
      ],
      ['a NaN time', { now: Number.NaN }, /now must be a finite number, got NaN/],
      ['a bad phase', { instances: [{ id: 'a', phase: 'gone' }] }, /instances\[0\].phase must be one of/],
      ['a negative tolerance', { tolerance: -0.1 }, /tolerance must be a finite number >= 0, got -0.1/],
    ];
    for (const [what, patch, message] of cases) {
      it(`rejects ${what}`, () => {
        assert.throws(() => computeHpaReplicas({ ...ok, ...patch } as HpaInput), message);
      });
    }
  });
});
