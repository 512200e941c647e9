// Property tests over random policies and random load sequences (fast-check, fixed seed for reproducibility).
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decide, resolvePolicy } from '@shoal/policy';
import type { Decision, Observation, PolicyInput, PolicyState } from '@shoal/policy';

const T0 = Date.UTC(2026, 0, 5, 9);

const policyArb: fc.Arbitrary<PolicyInput> = fc
  .record({
    preset: fc.constantFrom('shoal' as const, 'hpa' as const),
    minReplicas: fc.integer({ min: 0, max: 5 }),
    extra: fc.integer({ min: 0, max: 40 }),
    upWindow: fc.integer({ min: 0, max: 120 }),
    downWindow: fc.integer({ min: 0, max: 600 }),
    tolerance: fc.double({ min: 0, max: 0.3, noNaN: true }),
    panic: fc.boolean(),
    forecast: fc.boolean(),
    select: fc.constantFrom('Max' as const, 'Min' as const),
    slo: fc.boolean(),
  })
  .map((r) => ({
    preset: r.preset,
    minReplicas: r.minReplicas,
    maxReplicas: Math.max(1, r.minReplicas + r.extra),
    targets: [
      { metric: 'eventLoopUtilization', value: 0.7 },
      { metric: 'rps', value: 50 },
    ],
    tolerance: r.tolerance,
    panic: r.panic,
    forecast: r.forecast,
    ...(r.slo ? { slo: { thresholdMs: 200 } } : {}),
    behavior: {
      scaleUp: { stabilizationWindowSeconds: r.upWindow, selectPolicy: r.select },
      scaleDown: { stabilizationWindowSeconds: r.downWindow, selectPolicy: r.select },
    },
  }));

/** A load sequence: per step, demand in replicas' worth (0..60) and the gap to the next decision. */
const loadArb = fc.array(
  fc.record({ demand: fc.double({ min: 0, max: 60, noNaN: true }), gapMs: fc.integer({ min: 1_000, max: 30_000 }) }),
  {
    minLength: 1,
    maxLength: 60,
  },
);

function observation(now: number, replicas: number, demand: number): Observation {
  const perReplica = replicas > 0 ? demand / replicas : 0;
  return {
    now,
    currentReplicas: replicas,
    instances: Array.from({ length: replicas }, (_, k) => ({
      id: `i${k}`,
      ready: true,
      metrics: {
        eventLoopUtilization: Math.min(1, perReplica * 0.7),
        rps: perReplica * 50,
        latencyP95Ms: 50 + perReplica * 150,
      },
    })),
  };
}

function replay(
  policyInput: PolicyInput,
  load: Array<{ demand: number; gapMs: number }>,
  roundTrip = false,
): Array<{ t: number; from: number; d: Decision }> {
  const policy = resolvePolicy(policyInput);
  let state: PolicyState | undefined;
  let replicas = policy.minReplicas;
  let t = T0;
  const out: Array<{ t: number; from: number; d: Decision }> = [];
  for (const step of load) {
    t += step.gapMs;
    const d = decide(policy, observation(t, replicas, step.demand), state);
    out.push({ t, from: replicas, d });
    state = roundTrip ? (JSON.parse(JSON.stringify(d.state)) as PolicyState) : d.state;
    replicas = d.desiredReplicas;
  }
  return out;
}

describe('decide (properties)', () => {
  it('always returns a count within [minReplicas, maxReplicas]', () => {
    fc.assert(
      fc.property(policyArb, loadArb, (p, load) => {
        const policy = resolvePolicy(p);
        for (const { d } of replay(p, load)) {
          assert.ok(Number.isInteger(d.desiredReplicas));
          assert.ok(
            d.desiredReplicas >= policy.minReplicas && d.desiredReplicas <= policy.maxReplicas,
            `${d.desiredReplicas}`,
          );
        }
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  it('never reverses direction inside a stabilization window', () => {
    fc.assert(
      fc.property(policyArb, loadArb, (p, load) => {
        const policy = resolvePolicy(p);
        const upMs = policy.behavior.scaleUp.stabilizationWindowSeconds * 1000;
        const downMs = policy.behavior.scaleDown.stabilizationWindowSeconds * 1000;
        let lastUp = -Infinity;
        let lastDown = -Infinity;
        for (const { t, from, d } of replay(p, load)) {
          if (d.desiredReplicas > from) {
            // A scale-up right after a scale-down needs the up window to have passed (panic may skip it).
            if (!d.panicking)
              assert.ok(t - lastDown >= upMs || upMs === 0, `up ${t - lastDown} ms after a down (window ${upMs})`);
            lastUp = t;
          } else if (d.desiredReplicas < from) {
            assert.ok(t - lastUp >= downMs, `down ${t - lastUp} ms after an up (window ${downMs})`);
            lastDown = t;
          }
        }
      }),
      { seed: 11, numRuns: 200 },
    );
  });

  it('is deterministic, and resuming from serialized state changes nothing', () => {
    fc.assert(
      fc.property(policyArb, loadArb, (p, load) => {
        const a = replay(p, load).map((x) => x.d);
        const b = replay(p, load).map((x) => x.d);
        const c = replay(p, load, true).map((x) => x.d);
        assert.deepEqual(a, b);
        assert.deepEqual(
          a.map((d) => d.desiredReplicas),
          c.map((d) => d.desiredReplicas),
        );
        assert.deepEqual(JSON.parse(JSON.stringify(a.at(-1)?.state)), c.at(-1)?.state);
      }),
      { seed: 13, numRuns: 100 },
    );
  });
});
