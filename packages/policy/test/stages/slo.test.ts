import assert from 'node:assert/strict';
import { resolvePolicy } from '@shoal/policy';
import { applySlo, capacitySettling, sloLatency } from '@shoal/policy/internal';
import { context, fleet, sizing, T0 } from './helpers.js';

describe('stage: slo', () => {
  const policy = { preset: 'hpa', maxReplicas: 50, slo: { thresholdMs: 200 } } as const;

  it('averages the latency of ready instances (or takes the max)', () => {
    const slo = resolvePolicy({ slo: { thresholdMs: 100 } }).slo!;
    const instances = [
      { id: 'a', ready: true, metrics: { latencyP95Ms: 100 } },
      { id: 'b', ready: true, metrics: { latencyP95Ms: 300 } },
      { id: 'c', ready: false, metrics: { latencyP95Ms: 900 } },
    ];
    assert.equal(sloLatency(slo, instances), 200);
    const max = resolvePolicy({ slo: { thresholdMs: 100, aggregate: 'max' } }).slo!;
    assert.equal(sloLatency(max, instances), 300);
    assert.equal(sloLatency(slo, fleet(2, {})), undefined);
  });

  it('asks for more replicas above the threshold, at least one more', () => {
    const ctx = context(policy, 4, fleet(4, { latencyP95Ms: 300 }));
    const s = sizing({ proposal: 4, demand: 4 });
    applySlo(ctx, s);
    assert.equal(s.proposal, 6); // ceil(4 × 1.5)
    assert.equal(s.demand, 6);
    assert.equal(s.hold, false);
  });

  it('holds while capacity settles, and near the threshold', () => {
    const settling = context(policy, 4, [
      ...fleet(3, { latencyP95Ms: 300 }),
      { id: 'new', ready: true, readySince: T0 - 1000, metrics: { latencyP95Ms: 300 } },
    ]);
    const s = sizing({ proposal: 2 });
    applySlo(settling, s);
    assert.deepEqual([s.proposal, s.hold], [4, true]);
    assert.match(settling.reasons.join('\n'), /while capacity settles: hold 4/);

    const near = context(policy, 4, fleet(4, { latencyP95Ms: 190 }));
    const n = sizing({ proposal: 2 });
    applySlo(near, n);
    assert.deepEqual([n.proposal, n.hold], [4, true]);
  });

  it('records a ratio without an opinion well under the threshold, and nothing without an SLO', () => {
    const ctx = context(policy, 4, fleet(4, { latencyP95Ms: 20 }));
    const s = sizing({ proposal: 2 });
    applySlo(ctx, s);
    assert.equal(s.proposal, 2);
    assert.equal(ctx.proposals.at(-1)?.replicas, undefined);
    const none = context({ preset: 'hpa' }, 4, fleet(4, { latencyP95Ms: 900 }));
    applySlo(none, s);
    assert.equal(none.proposals.length, 0);
  });

  it('sees an instance that is starting as settling capacity', () => {
    const slo = resolvePolicy({ slo: { thresholdMs: 100 } }).slo!;
    assert.equal(capacitySettling(slo, [{ id: 'a', ready: false, startedAt: T0, metrics: {} }], T0), true);
    assert.equal(capacitySettling(slo, fleet(2, {}), T0), false);
  });
});
