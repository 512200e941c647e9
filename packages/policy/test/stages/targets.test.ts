import assert from 'node:assert/strict';
import { blockScaleDownOnFailure, proposeTargets, totalOf } from '@shoal/policy/internal';
import { context, fleet, sizing } from './helpers.js';

describe('stage: targets', () => {
  it('takes the largest proposal and the largest raw demand over the targets', () => {
    const ctx = context(
      {
        preset: 'hpa',
        maxReplicas: 50,
        targets: [
          { metric: 'eventLoopUtilization', value: 0.5 },
          { metric: 'rps', value: 100 },
        ],
      },
      4,
      fleet(4, { eventLoopUtilization: 0.5, rps: 300 }),
    );
    const s = proposeTargets(ctx);
    assert.equal(s.proposal, 12); // 4 × 300 / 100
    assert.ok(Math.abs(s.demand - 12) < 1e-9);
    assert.equal(s.failed, 0);
    assert.deepEqual(
      ctx.proposals.map((p) => [p.target, p.replicas]),
      [
        ['eventLoopUtilization', 4],
        ['rps', 12],
      ],
    );
  });

  it('counts a target without data as failed and blocks a scale-down with it', () => {
    const ctx = context(
      {
        preset: 'hpa',
        targets: [
          { metric: 'eventLoopUtilization', value: 0.7 },
          { metric: 'queueDepth', value: 10 },
        ],
      },
      6,
      fleet(6, { eventLoopUtilization: 0.1 }),
    );
    const s = proposeTargets(ctx);
    assert.equal(s.failed, 1);
    assert.ok(s.proposal < 6);
    assert.ok(ctx.proposals.some((p) => p.target === 'queueDepth' && p.error !== undefined));
    blockScaleDownOnFailure(ctx, s);
    assert.equal(s.proposal, 6);
    assert.match(ctx.reasons.join('\n'), /1 target\(s\) failed: not scaling down/);
  });

  it('sums a total target over live instances unless the service reports it', () => {
    const t = { metric: 'queue', type: 'total', value: 10 } as const;
    const instances = [...fleet(2, { queue: 5 }), { id: 'x', ready: true, deleting: true, metrics: { queue: 50 } }];
    assert.equal(totalOf(t as never, { now: 0, currentReplicas: 3, instances }), 10);
    assert.equal(totalOf(t as never, { now: 0, currentReplicas: 3, instances, metrics: { queue: 7 } }), 7);
    assert.equal(totalOf(t as never, { now: 0, currentReplicas: 0, instances: [] }), undefined);
  });

  it('leaves the sizing untouched when no target failed', () => {
    const ctx = context({ preset: 'hpa' }, 5, fleet(5, {}));
    const s = sizing({ proposal: 2 });
    blockScaleDownOnFailure(ctx, s);
    assert.equal(s.proposal, 2);
  });
});
