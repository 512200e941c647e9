import assert from 'node:assert/strict';
import type { PolicyState } from '@shoal/policy';
import { applyForecast, applyHeadroom, fitLine } from '@shoal/policy/internal';
import { context, fleet, sizing, T0 } from './helpers.js';

describe('stage: forecast and headroom', () => {
  it('fits a least-squares line', () => {
    const line = fitLine(
      [
        { t: 0, d: 1 },
        { t: 1000, d: 2 },
        { t: 2000, d: 3 },
      ],
      4000,
    );
    assert.ok(Math.abs(line.slope - 0.001) < 1e-12);
    assert.ok(Math.abs(line.value - 5) < 1e-9);
    assert.ok(Math.abs(line.r2 - 1) < 1e-12);
    assert.deepEqual(fitLine([{ t: 5, d: 2 }], 10), { slope: 0, value: 2, r2: 0 });
  });

  it('raises the proposal ahead of a steady ramp, capped by maxFactor × demand', () => {
    const samples = Array.from({ length: 13 }, (_, k) => ({ t: T0 - (12 - k) * 5000, d: 4 + k * 0.5 }));
    const state: PolicyState = {
      version: 1,
      recommendations: [],
      scaleUpEvents: [],
      scaleDownEvents: [],
      samples,
      panic: { since: null, lastOverAt: null, maxReplicas: 0 },
      lastDecisionAt: T0 - 5000,
    };
    const ctx = context(
      { maxReplicas: 100, forecast: { enabled: true, windowMs: 60_000, horizonMs: 30_000, maxFactor: 2 } },
      8,
      fleet(8, {}),
      state,
    );
    const s = sizing({ proposal: 10, demand: 10, sizedDemand: 10 });
    applyForecast(ctx, s);
    assert.equal(s.proposal, 13); // 10 + 0.1 per s × 30 s
    assert.equal(s.sizedDemand, 13);
    assert.match(ctx.reasons.join('\n'), /forecast: demand 13 in 30 s → 13/);

    const panicking = sizing({ proposal: 10, demand: 10, panicking: true });
    applyForecast(ctx, panicking);
    assert.equal(panicking.proposal, 10);
  });

  it('adds headroom to the unrounded demand of a scale-up only', () => {
    const ctx = context({ maxReplicas: 100, scaleUpHeadroom: 0.1 }, 4, fleet(4, {}));
    const up = sizing({ proposal: 10, sizedDemand: 9.5 });
    applyHeadroom(ctx, up);
    assert.equal(up.proposal, 11); // ceil(9.5 × 1.1)
    const small = sizing({ proposal: 5, sizedDemand: 4.2 });
    applyHeadroom(ctx, small);
    assert.equal(small.proposal, 5); // ceil(4.62): no whole extra replica
    const flat = sizing({ proposal: 4, sizedDemand: 3.9 });
    applyHeadroom(ctx, flat);
    assert.equal(flat.proposal, 4);
  });
});
