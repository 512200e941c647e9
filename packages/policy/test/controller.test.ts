import assert from 'node:assert/strict';
import { ServiceAutoscaler } from '@shoal/policy';
import type { Observation, ObservedInstance, PolicyInput } from '@shoal/policy';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

function fleet(n: number, metrics: Record<string, number>, from = 0): ObservedInstance[] {
  return Array.from({ length: n }, (_, k) => ({ id: `i${from + k}`, ready: true, metrics: { ...metrics } }));
}

function obs(now: number, current: number, instances: ObservedInstance[]): Observation {
  return { now, currentReplicas: current, instances };
}

describe('ServiceAutoscaler (the controller the coordinator and the simulator run)', () => {
  const hpaInFlight: PolicyInput = { preset: 'hpa', maxReplicas: 20, targets: [{ metric: 'inFlight', value: 10 }] };

  it('counts silent instances as missing (preset hpa: 10 replicas, 5 silent, 5 at 8 of 10 → 10, as Kubernetes)', () => {
    const c = new ServiceAutoscaler({ policy: hpaInFlight });
    const step = c.step(obs(T0, 10, [...fleet(5, { inFlight: 8 }), ...fleet(5, {}, 5)]));
    assert.equal(step.desiredReplicas, 10, step.reasons.join('; '));
    // Dropping the silent five instead would have sized the service from the five that report.
    const dropped = new ServiceAutoscaler({ policy: hpaInFlight }).step(obs(T0, 10, fleet(5, { inFlight: 8 })));
    assert.equal(dropped.desiredReplicas, 4);
  });

  it('holds a scale-down for one scale-down window after it starts leading, without a phantom scale event', () => {
    const c = new ServiceAutoscaler({
      policy: { ...hpaInFlight, behavior: { scaleDown: { stabilizationWindowSeconds: 60 } } },
    });
    c.lead(T0);
    const held = c.step(obs(T0 + 1000, 6, fleet(6, { inFlight: 1 })));
    assert.deepEqual([held.desiredReplicas, held.held, held.victims], [6, true, undefined]);
    assert.ok(held.decision.desiredReplicas < 6, 'the engine alone would scale down');
    assert.match(held.reasons.at(-1) as string, /^holding scale-down: 1 s of fresh data since taking over, need 60 s$/);
    assert.deepEqual(c.state?.scaleDownEvents, []);
    assert.equal(c.holdRemainingMs(T0 + 61_000), 0);
    const after = c.step(obs(T0 + 61_000, 6, fleet(6, { inFlight: 1 })));
    assert.equal(after.held, false);
    assert.ok(after.desiredReplicas < 6, after.reasons.join('; '));
    assert.equal(after.victims?.length, 6 - after.desiredReplicas);
  });

  it('resumes a saved state and keeps the state of a refused observation', () => {
    const first = new ServiceAutoscaler({ policy: hpaInFlight });
    first.step(obs(T0, 4, fleet(4, { inFlight: 20 })));
    const saved = JSON.parse(JSON.stringify(first.state)) as NonNullable<typeof first.state>;
    const next = new ServiceAutoscaler({ policy: hpaInFlight });
    next.lead(T0 + 5000, saved);
    assert.deepEqual(next.state, saved);
    assert.throws(() => next.step(obs(T0 - 1, 4, fleet(4, { inFlight: 20 }))), /must not go back in time/);
    assert.deepEqual(next.state, saved);
  });

  it('takes a reloaded policy and keeps its state', () => {
    const c = new ServiceAutoscaler({ policy: hpaInFlight });
    c.step(obs(T0, 4, fleet(4, { inFlight: 10 })));
    c.setPolicy({ ...hpaInFlight, maxReplicas: 3 });
    assert.equal(c.policy.maxReplicas, 3);
    assert.equal(c.step(obs(T0 + 15_000, 4, fleet(4, { inFlight: 10 }))).desiredReplicas, 3);
    assert.equal(c.state?.lastDecisionAt, T0 + 15_000);
  });
});
