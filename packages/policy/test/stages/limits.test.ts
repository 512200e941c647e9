import assert from 'node:assert/strict';
import type { PolicyState } from '@shoal/policy';
import { stabilizeAndLimit, stabilizeProposal } from '@shoal/policy/internal';
import { context, fleet, sizing, T0 } from './helpers.js';

function withRecommendations(recs: Array<[number, number]>): PolicyState {
  return {
    version: 1,
    recommendations: recs.map(([t, replicas]) => ({ t, replicas })),
    scaleUpEvents: [],
    scaleDownEvents: [],
    samples: [],
    panic: { since: null, lastOverAt: null, maxReplicas: 0 },
    lastDecisionAt: recs.at(-1)?.[0] ?? null,
  };
}

describe('stage: stabilization and limits', () => {
  it('keeps the highest recommendation of the scale-down window (HPA behavior)', () => {
    const ctx = context({ preset: 'hpa' }, 8, fleet(8, {}), withRecommendations([[T0 - 60_000, 8]]));
    const s = sizing({ proposal: 3 });
    assert.equal(stabilizeProposal(ctx, s), 8);
    assert.deepEqual(ctx.state.recommendations.at(-1), { t: T0, replicas: 3 });
    assert.match(ctx.reasons.join('\n'), /scale-down stabilized at 8/);
  });

  it('goes straight to the panic need while over the threshold', () => {
    const ctx = context(
      { maxReplicas: 100, behavior: { scaleUp: { stabilizationWindowSeconds: 60 } } },
      4,
      fleet(4, {}),
      withRecommendations([[T0 - 10_000, 4]]),
    );
    const s = sizing({ proposal: 20, panicOver: true, panicNeed: 15 });
    assert.equal(stabilizeProposal(ctx, s), 15);
  });

  it('applies the rate policies and names the limit', () => {
    const ctx = context({ preset: 'hpa', maxReplicas: 1000 }, 4, fleet(4, {}), withRecommendations([]));
    const r = stabilizeAndLimit(ctx, sizing({ proposal: 100 }));
    assert.deepEqual(r, { replicas: 8, limit: 'ScaleUpLimit' }); // max(100 %, 4 pods) per 15 s
  });

  it('takes the legacy path (max(2 × current, 4)) when the behavior is legacy', () => {
    const ctx = context(
      { preset: 'hpa', maxReplicas: 1000, behavior: { legacy: true } },
      3,
      fleet(3, {}),
      withRecommendations([]),
    );
    assert.deepEqual(stabilizeAndLimit(ctx, sizing({ proposal: 50 })), { replicas: 6, limit: 'ScaleUpLimit' });
  });
});
