// HPA behavior: rate policies, their rounding, selectPolicy and stabilization, from the rules in
// kubernetes/kubernetes pkg/controller/podautoscaler/horizontal.go and the autoscaling/v2 API defaults.
import assert from 'node:assert/strict';
import { decide } from '@shoal/policy';
import {
  KUBERNETES_BEHAVIOR,
  limitLegacy,
  limitRate,
  resolveBehavior,
  scaleDownLimit,
  scaleUpLimit,
  stabilize,
  stabilizeLegacy,
} from '@shoal/policy/internal';
import type { Behavior, Decision, ObservedInstance, PolicyState } from '@shoal/policy';
import type { ScaleEvent } from '@shoal/policy/internal';

const T = 1_700_000_000_000;
const none: ScaleEvent[] = [];

describe('HPA behavior', () => {
  describe('defaults', () => {
    it('uses Kubernetes defaults: up 0 s, {4 Pods, 100 %} per 15 s; down 300 s, 100 % per 15 s; Max', () => {
      const b = resolveBehavior(undefined);
      assert.equal(b.scaleUp.stabilizationWindowSeconds, 0);
      assert.equal(b.scaleDown.stabilizationWindowSeconds, 300);
      assert.deepEqual(
        b.scaleUp.policies.map((p) => [p.type, p.value, p.periodSeconds]),
        [
          ['Pods', 4, 15],
          ['Percent', 100, 15],
        ],
      );
      assert.deepEqual(
        b.scaleDown.policies.map((p) => [p.type, p.value, p.periodSeconds]),
        [['Percent', 100, 15]],
      );
      assert.equal(b.scaleUp.selectPolicy, 'Max');
      assert.equal(b.scaleDown.selectPolicy, 'Max');
    });

    it('fills only the fields a partial behavior leaves out', () => {
      const b = resolveBehavior({ scaleDown: { stabilizationWindowSeconds: 60 } });
      assert.equal(b.scaleDown.stabilizationWindowSeconds, 60);
      assert.deepEqual(b.scaleDown.policies, KUBERNETES_BEHAVIOR.scaleDown.policies);
      assert.deepEqual(b.scaleUp, KUBERNETES_BEHAVIOR.scaleUp);
    });
  });

  describe('scale-up limit', () => {
    const table: Array<[string, number, number]> = [
      ['from 1: max(1 + 4, ceil(1 × 2)) = 5', 1, 5],
      ['from 3: max(3 + 4, ceil(3 × 2)) = 7', 3, 7],
      ['from 10: max(10 + 4, ceil(10 × 2)) = 20', 10, 20],
    ];
    for (const [name, current, limit] of table) {
      it(`default policies ${name}`, () => {
        assert.equal(scaleUpLimit(KUBERNETES_BEHAVIOR.scaleUp, T, current, none, none), limit);
      });
    }

    it('rounds a Percent policy up (ceil)', () => {
      const b = resolveBehavior({ scaleUp: { policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }] } });
      assert.equal(scaleUpLimit(b.scaleUp, T, 3, none, none), 4); // ceil(3.3)
    });

    it('selectPolicy Min takes the smallest change', () => {
      const b = resolveBehavior({ scaleUp: { selectPolicy: 'Min' } });
      assert.equal(scaleUpLimit(b.scaleUp, T, 10, none, none), 14);
    });

    it('selectPolicy Disabled keeps the current count', () => {
      const b = resolveBehavior({ scaleUp: { selectPolicy: 'Disabled' } });
      assert.equal(scaleUpLimit(b.scaleUp, T, 10, none, none), 10);
      assert.deepEqual(limitRate(b, T, 10, 30, 1, 100, none, none), { replicas: 10, limit: 'ScaleUpLimit' });
    });

    it('counts replicas added inside the period from the period start', () => {
      // 3 → 7 five seconds ago: the period started at 3, so the limit is still 7 until 15 s have passed.
      const up: ScaleEvent[] = [{ t: T - 5_000, change: 4 }];
      assert.equal(scaleUpLimit(KUBERNETES_BEHAVIOR.scaleUp, T, 7, up, none), 7);
      assert.equal(scaleUpLimit(KUBERNETES_BEHAVIOR.scaleUp, T + 10_001, 7, up, none), 14);
    });

    it('an event exactly one period old no longer counts (strictly after the cutoff)', () => {
      const up: ScaleEvent[] = [{ t: T - 15_000, change: 4 }];
      assert.equal(scaleUpLimit(KUBERNETES_BEHAVIOR.scaleUp, T, 7, up, none), 14);
    });
  });

  describe('scale-down limit', () => {
    const docs = resolveBehavior({
      scaleDown: {
        policies: [
          { type: 'Pods', value: 4, periodSeconds: 60 },
          { type: 'Percent', value: 10, periodSeconds: 60 },
        ],
      },
    });

    it('the documented example: 80 → 72 (10 % beats 4 pods), hold, then 72 → 64 (int(72 × 0.9))', () => {
      assert.equal(scaleDownLimit(docs.scaleDown, T, 80, none, none), 72);
      const down: ScaleEvent[] = [{ t: T, change: 8 }];
      assert.equal(scaleDownLimit(docs.scaleDown, T + 30_000, 72, none, down), 72);
      assert.equal(scaleDownLimit(docs.scaleDown, T + 60_000, 72, none, down), 64);
    });

    it('at 40 pods or fewer the Pods policy allows more', () => {
      assert.equal(scaleDownLimit(docs.scaleDown, T, 30, none, none), 26); // min(30 - 4, int(27)) = 26
    });

    it('truncates a Percent policy (int32)', () => {
      const b = resolveBehavior({ scaleDown: { policies: [{ type: 'Percent', value: 10, periodSeconds: 15 }] } });
      assert.equal(scaleDownLimit(b.scaleDown, T, 5, none, none), 4); // int(4.5)
      assert.equal(scaleDownLimit(b.scaleDown, T, 9, none, none), 8); // int(8.1)
    });

    it('selectPolicy Min keeps the most replicas', () => {
      const b = resolveBehavior({ scaleDown: { ...docs.scaleDown, selectPolicy: 'Min' } });
      assert.equal(scaleDownLimit(b.scaleDown, T, 80, none, none), 76);
    });

    it('min/max bound the result and name the limit', () => {
      assert.deepEqual(limitRate(KUBERNETES_BEHAVIOR, T, 10, 2, 4, 20, none, none), {
        replicas: 4,
        limit: 'TooFewReplicas',
      });
      assert.deepEqual(limitRate(KUBERNETES_BEHAVIOR, T, 10, 50, 1, 15, none, none), {
        replicas: 15,
        limit: 'TooManyReplicas',
      });
      assert.deepEqual(limitRate(KUBERNETES_BEHAVIOR, T, 10, 50, 1, 100, none, none), {
        replicas: 20,
        limit: 'ScaleUpLimit',
      });
      assert.deepEqual(limitRate(docs, T, 80, 10, 1, 100, none, none), { replicas: 72, limit: 'ScaleDownLimit' });
      assert.deepEqual(limitRate(KUBERNETES_BEHAVIOR, T, 10, 12, 1, 100, none, none), {
        replicas: 12,
        limit: 'DesiredWithinRange',
      });
    });
  });

  describe('stabilization', () => {
    const b: Behavior = resolveBehavior({ scaleUp: { stabilizationWindowSeconds: 60 } });

    it('scale-down takes the highest recommendation inside the down window', () => {
      const recs = [
        { t: T - 200_000, replicas: 9 },
        { t: T - 100_000, replicas: 6 },
      ];
      assert.equal(stabilize(KUBERNETES_BEHAVIOR, T, 10, 3, recs).replicas, 9);
      assert.equal(stabilize(KUBERNETES_BEHAVIOR, T + 100_001, 10, 3, recs).replicas, 6);
      assert.equal(stabilize(KUBERNETES_BEHAVIOR, T + 200_001, 10, 3, recs).replicas, 3);
    });

    it('scale-up takes the lowest recommendation inside the up window', () => {
      const recs = [{ t: T - 30_000, replicas: 4 }];
      assert.equal(stabilize(b, T, 3, 10, recs).replicas, 4);
      assert.equal(stabilize(b, T + 30_001, 3, 10, recs).replicas, 10);
    });

    it('never moves past the current count in the wrong direction', () => {
      // Recommendations 12 (up) and 2 (down) in the windows: current 5 stays.
      const recs = [
        { t: T - 10_000, replicas: 2 },
        { t: T - 5_000, replicas: 12 },
      ];
      assert.equal(stabilize(b, T, 5, 8, recs).replicas, 5);
    });
  });

  describe('legacy path (an HPA without spec.behavior: normalizeDesiredReplicas)', () => {
    const table: Array<[string, number, number, number, number, number, string]> = [
      // name, current, desired, min, max → replicas, limit
      ['from 1 the minimum of 4 applies: max(2 × 1, 4) = 4', 1, 10, 1, 100, 4, 'ScaleUpLimit'],
      ['from 3: max(2 × 3, 4) = 6', 3, 10, 1, 100, 6, 'ScaleUpLimit'],
      ['from 10: 20', 10, 50, 1, 100, 20, 'ScaleUpLimit'],
      ['maxReplicas below the cap: TooManyReplicas', 10, 50, 1, 15, 15, 'TooManyReplicas'],
      [
        'maxReplicas equal to the cap: TooManyReplicas (the cap only applies when lower)',
        10,
        50,
        1,
        20,
        20,
        'TooManyReplicas',
      ],
      ['within the cap', 10, 17, 1, 100, 17, 'DesiredWithinRange'],
      ['no limit on scaling down: 40 → 2 at once', 40, 2, 1, 100, 2, 'DesiredWithinRange'],
      ['below minReplicas: TooFewReplicas', 40, 1, 3, 100, 3, 'TooFewReplicas'],
    ];
    for (const [name, current, desired, min, max, replicas, limit] of table) {
      it(name, () => {
        assert.deepEqual(limitLegacy(current, desired, min, max), { replicas, limit });
      });
    }

    it('stabilizes on the highest recommendation not older than the window (the cutoff itself included)', () => {
      const recs = [
        { t: T - 300_000, replicas: 9 },
        { t: T - 100_000, replicas: 6 },
      ];
      assert.equal(stabilizeLegacy(300, T, 3, recs), 9); // exactly 300 s old: Kubernetes drops only older ones
      assert.equal(stabilizeLegacy(300, T + 1, 3, recs), 6);
      assert.equal(stabilizeLegacy(300, T + 200_001, 3, recs), 3);
      // Above the current count too: legacy has no "towards current" clamp, so a capped scale-up continues.
      assert.equal(stabilizeLegacy(300, T, 12, recs), 12);
    });

    it('resolves with no scale-up window and the controller default of 300 s, or the given window', () => {
      const b = resolveBehavior({ legacy: true });
      assert.equal(b.legacy, true);
      assert.equal(b.scaleUp.stabilizationWindowSeconds, 0);
      assert.equal(b.scaleDown.stabilizationWindowSeconds, 300);
      assert.equal(
        resolveBehavior({ legacy: true, scaleDown: { stabilizationWindowSeconds: 120 } }).scaleDown
          .stabilizationWindowSeconds,
        120,
      );
      assert.equal(resolveBehavior({ legacy: false }).legacy, undefined);
      assert.throws(
        () => resolveBehavior({ legacy: true, scaleUp: {} }),
        /behavior.scaleUp must not be set with behavior.legacy/,
      );
      assert.throws(
        () =>
          resolveBehavior({ legacy: true, scaleDown: { policies: [{ type: 'Pods', value: 1, periodSeconds: 15 }] } }),
        /behavior.scaleDown takes only stabilizationWindowSeconds with behavior.legacy/,
      );
      assert.throws(() => resolveBehavior({ legacy: 'yes' as never }), /behavior.legacy must be a boolean, got string/);
    });

    it('decide() follows it: capped doubling up, a 300 s hold, then straight down to the demand', () => {
      const policy = {
        preset: 'hpa' as const,
        maxReplicas: 100,
        targets: [{ metric: 'rps', value: 10 }],
        behavior: { legacy: true },
      };
      let state: PolicyState | undefined;
      let replicas = 2;
      /** `total` requests per second spread over the current replicas (a metric that does not saturate). */
      const step = (s: number, total: number): Decision => {
        const instances: ObservedInstance[] = Array.from({ length: replicas }, (_, k) => ({
          id: `i${k}`,
          ready: true,
          metrics: { rps: total / replicas },
        }));
        const d = decide(policy, { now: T + s * 1000, currentReplicas: replicas, instances }, state);
        state = d.state;
        replicas = d.desiredReplicas;
        return d;
      };
      // 300 req/s wants 30 replicas at once; each decision may only double (at least to 4).
      const ups = [0, 15, 30, 45].map((s) => step(s, 300));
      assert.deepEqual(
        ups.map((d) => [d.desiredReplicas, d.limitedBy]),
        [
          [4, 'ScaleUpLimit'],
          [8, 'ScaleUpLimit'],
          [16, 'ScaleUpLimit'],
          [30, 'DesiredWithinRange'],
        ],
      );
      // The load falls to 45 req/s (ceil(4.5) = 5 replicas): the 30-replica recommendations hold it for 300 s (the one at
      // 45 s is the last of them), then it drops to 5 in one step (no scale-down rate limit on this path).
      for (let s = 60; s <= 345; s += 15) assert.equal(step(s, 45).desiredReplicas, 30, `at ${s} s`);
      const down = step(360, 45);
      assert.equal(down.desiredReplicas, 5);
      assert.ok(down.victims?.length === 25);
    });
  });

  describe('validation', () => {
    it('names the option and value', () => {
      assert.throws(
        () => resolveBehavior({ scaleDown: { policies: [{ type: 'Pods', value: 0, periodSeconds: 15 }] } }),
        /behavior.scaleDown.policies\[0\].value must be an integer >= 1, got 0/,
      );
      assert.throws(
        () => resolveBehavior({ scaleUp: { selectPolicy: 'Fastest' as never } }),
        /behavior.scaleUp.selectPolicy must be one of "Max", "Min", "Disabled", got "Fastest"/,
      );
      assert.throws(
        () => resolveBehavior({ scaleUp: { stabilizationWindowSeconds: 7200 } }),
        /behavior.scaleUp.stabilizationWindowSeconds must be an integer between 0 and 3600, got 7200/,
      );
    });
  });
});
