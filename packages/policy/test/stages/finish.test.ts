import assert from 'node:assert/strict';
import { finishDecision } from '@shoal/policy/internal';
import { context, fleet, T0 } from './helpers.js';

describe('stage: finish', () => {
  it('records a scale-down event, names victims and the reason', () => {
    const ctx = context({ preset: 'hpa' }, 4, [
      { id: 'busy', ready: true, metrics: { inFlight: 9 } },
      { id: 'idle', ready: true, metrics: { inFlight: 0 } },
      ...fleet(2, { inFlight: 5 }),
    ]);
    const d = finishDecision(ctx, 3, 2, 'ScaleDownLimit', false);
    assert.equal(d.desiredReplicas, 3);
    assert.equal(d.recommendation, 2);
    assert.equal(d.victims?.length, 1);
    assert.deepEqual(d.state.scaleDownEvents, [{ t: T0, change: 1 }]);
    assert.equal(d.state.lastDecisionAt, T0);
    assert.match(d.reasons.at(-1) as string, /scale down 4 → 3; drain /);
  });

  it('raises the panic high mark while panicking and records a scale-up', () => {
    const ctx = context({ maxReplicas: 50 }, 4, fleet(4, {}));
    ctx.state.panic = { since: T0, lastOverAt: T0, maxReplicas: 4 };
    const d = finishDecision(ctx, 9, 9, 'DesiredWithinRange', true);
    assert.equal(d.state.panic.maxReplicas, 9);
    assert.deepEqual(d.state.scaleUpEvents, [{ t: T0, change: 5 }]);
    assert.equal(d.victims, undefined);
    assert.equal(d.reasons.at(-1), 'scale up 4 → 9');
  });
});
