import assert from 'node:assert/strict';
import { applyPanic, recordDemand } from '@shoal/policy/internal';
import type { PolicyState } from '@shoal/policy';
import { context, fleet, sizing, T0 } from './helpers.js';

function state(over: Partial<PolicyState> = {}): PolicyState {
  return {
    version: 1,
    recommendations: [{ t: T0 - 5000, replicas: 4 }],
    scaleUpEvents: [],
    scaleDownEvents: [],
    samples: [{ t: T0 - 5000, d: 4 }],
    panic: { since: null, lastOverAt: null, maxReplicas: 0 },
    lastDecisionAt: T0 - 5000,
    ...over,
  };
}

describe('stage: panic', () => {
  const policy = { maxReplicas: 100, panic: { threshold: 2, windowMs: 10_000 } };

  it('enters panic when the short-window demand reaches threshold × ready, and floors at it', () => {
    const ctx = context(policy, 4, fleet(4, {}), state());
    const s = sizing({ proposal: 12, demand: 20 });
    recordDemand(ctx, s);
    applyPanic(ctx, s);
    assert.equal(s.panicking, true);
    assert.equal(s.panicOver, true);
    assert.equal(s.panicNeed, 12); // mean of 4 and 20
    assert.equal(ctx.state.panic.since, T0);
    assert.equal(s.proposal, 12);
  });

  it('never scales down in the hold phase, and ends after the stable window', () => {
    const held = state({ panic: { since: T0 - 20_000, lastOverAt: T0 - 5000, maxReplicas: 9 } });
    const ctx = context(policy, 9, fleet(9, {}), held);
    const s = sizing({ proposal: 3, demand: 3 });
    recordDemand(ctx, s);
    applyPanic(ctx, s);
    assert.equal(s.panicking, true);
    assert.equal(s.panicOver, false);
    assert.equal(s.proposal, 9);

    const over = state({ panic: { since: T0 - 200_000, lastOverAt: T0 - 100_000, maxReplicas: 9 } });
    const later = context({ ...policy, panic: { ...policy.panic, stableWindowMs: 60_000 } }, 9, fleet(9, {}), over);
    const l = sizing({ proposal: 3, demand: 3 });
    recordDemand(later, l);
    applyPanic(later, l);
    assert.equal(l.panicking, false);
    assert.equal(later.state.panic.since, null);
    assert.match(later.reasons.join('\n'), /panic over after 200 s/);
  });

  it('starts a fresh state in panic with more than one ready instance (panic.onStart)', () => {
    const ctx = context(policy, 3, fleet(3, {}));
    const s = sizing({ proposal: 1, demand: 1 });
    recordDemand(ctx, s);
    applyPanic(ctx, s);
    assert.equal(s.panicking, true);
    assert.equal(s.proposal, 3);
    assert.match(ctx.reasons.join('\n'), /fresh state with 3 ready instances/);
  });

  it('clears a stored panic when panic mode is off', () => {
    const ctx = context(
      { panic: { enabled: false } },
      3,
      fleet(3, {}),
      state({ panic: { since: T0 - 1, lastOverAt: T0 - 1, maxReplicas: 5 } }),
    );
    const s = sizing({ proposal: 1, demand: 1 });
    applyPanic(ctx, s);
    assert.deepEqual(ctx.state.panic, { since: null, lastOverAt: null, maxReplicas: 0 });
    assert.equal(s.panicking, false);
  });
});
