import assert from 'node:assert/strict';
import { resolvePolicy } from '@shoal/policy';
import { averageDemand, demandHistoryMs, recordDemand, sizeFromStableWindow } from '@shoal/policy/internal';
import { context, fleet, sizing, T0 } from './helpers.js';

describe('stage: stable window', () => {
  it('keeps demand as long as the longest window that reads it', () => {
    assert.equal(demandHistoryMs(resolvePolicy({ preset: 'hpa' })), 0);
    const p = resolvePolicy({ stableWindowMs: 60_000, panic: { windowMs: 6_000 } });
    assert.equal(demandHistoryMs(p), Math.max(60_000, p.forecast.enabled ? p.forecast.windowMs : 0));
  });

  it('averages the samples inside the window only', () => {
    const samples = [
      { t: T0 - 70_000, d: 100 },
      { t: T0 - 30_000, d: 4 },
      { t: T0, d: 8 },
    ];
    assert.equal(averageDemand(samples, T0, 60_000), 6);
    assert.equal(averageDemand([], T0, 60_000), undefined);
  });

  it('records the demand and sizes from the window average', () => {
    const state = {
      version: 1 as const,
      recommendations: [{ t: T0 - 10_000, replicas: 4 }],
      scaleUpEvents: [],
      scaleDownEvents: [],
      samples: [{ t: T0 - 10_000, d: 2 }],
      panic: { since: null, lastOverAt: null, maxReplicas: 0 },
      lastDecisionAt: T0 - 10_000,
    };
    const ctx = context({ stableWindowMs: 60_000, panic: { enabled: false } }, 4, fleet(4, {}), state);
    const s = sizing({ proposal: 10, demand: 10 });
    recordDemand(ctx, s);
    assert.equal(ctx.state.samples.length, 2);
    sizeFromStableWindow(ctx, s);
    assert.equal(s.sizedDemand, 6);
    assert.equal(s.proposal, 6);
    assert.match(ctx.reasons.join('\n'), /demand averaged over 60 s: 6 replicas → 6/);
  });

  it('does not let the average scale down past a hold', () => {
    const ctx = context({ stableWindowMs: 60_000, panic: { enabled: false } }, 8, fleet(8, {}));
    const s = sizing({ proposal: 8, demand: 2, hold: true });
    recordDemand(ctx, s);
    sizeFromStableWindow(ctx, s);
    assert.equal(s.proposal, 8);
  });

  it('leaves the proposal alone without a stable window', () => {
    const ctx = context({ preset: 'hpa' }, 4, fleet(4, {}));
    const s = sizing({ proposal: 7, demand: 6.5 });
    recordDemand(ctx, s);
    sizeFromStableWindow(ctx, s);
    assert.deepEqual([s.proposal, s.sizedDemand], [7, 6.5]);
  });
});
